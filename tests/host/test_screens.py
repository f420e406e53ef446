"""Golden screenshots: every screen drawn through the real ST7789 driver into the rig's ST7789
model, compared by hash with tests/screens/<name>.png. After an intended change of a screen,
re-record with `python -m tools.screenshots record` and look at the pictures."""

import pytest

from tools.screenshots import GOLDEN, SCREENS, SETUP, attach_display, golden_sha256, shoot


@pytest.fixture(scope="module")
def screen(vdevice, device):
    attach_display(vdevice.rig)
    device.exec(SETUP, timeout=60)
    yield device
    vdevice.rig.detach("display")


@pytest.mark.parametrize("name", list(SCREENS))
def test_screen_matches_its_golden_picture(screen, vdevice, name, tmp_path):
    path, sha = shoot(screen, vdevice.rig, name, tmp_path)
    assert golden_sha256(name) is not None, "no tests/screens/%s.png: record with python -m tools.screenshots record" % name
    assert sha == golden_sha256(name), ("%s differs from tests/screens/%s.png (see %s); if the change is intended, "
                                        "re-record with python -m tools.screenshots record" % (name, name, path))


def test_no_stale_golden_pictures():
    assert sorted(p.stem for p in GOLDEN.glob("*.png")) == sorted(SCREENS)
