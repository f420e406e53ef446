"""The flash image: what `make image` builds, read back with littlefs-python."""

import littlefs

from tools import fonts, image


def mount(path):
    fs = littlefs.LittleFS(block_size=image.BLOCK_SIZE, block_count=path.stat().st_size // image.BLOCK_SIZE, mount=False)
    fs.context.buffer = bytearray(path.read_bytes())
    fs.mount()
    return fs


def test_image_is_the_vfs_partition(firmware_image):
    assert firmware_image.stat().st_size == image.VFS_BLOCKS * 4096 == 0x80000


def test_the_virtual_handhelds_image_holds_data_only(firmware_image):
    # Its interpreter has the firmware frozen (tools/vdevice/build.py), as the board's build has:
    # code on the file system would be loaded into the heap, which the board keeps for data.
    # Its data too (the fonts are frozen: tools/fonts.py): a new unit's file system is empty.
    fs = mount(firmware_image)
    assert fs.listdir("/") == []


def test_a_stock_boards_image_holds_boot_main_and_bytecode(tmp_path):
    # For a board running stock MicroPython (make deploy): the firmware as files.
    image.build(tmp_path / "handheld.img", board="handheld")
    fs = mount(tmp_path / "handheld.img")
    assert {"boot.py", "main.py", "board", "lib"} <= set(fs.listdir("/"))
    assert "sim.mpy" not in fs.listdir("board")
    assert fonts.MODULE[:-3] + ".mpy" in fs.listdir("lib")  # the fonts, frozen on the terminal's firmware
    with fs.open("boot.py", "rb") as f:
        assert f.read() == (image.ROOT / "boot.py").read_bytes()
    with fs.open("lib/diag.mpy", "rb") as f:
        header = f.read(4)
    # .mpy v6, no native architecture: plain bytecode that the ESP32 port loads.
    assert header[0:2] == b"M\x06", header
    assert header[2] >> 2 == 0, "native code in lib/diag.mpy: arch %d" % (header[2] >> 2)


def test_a_firmware_file_that_does_not_compile_is_named(tmp_path, monkeypatch):
    bad = tmp_path / "lib"
    bad.mkdir()
    (bad / "broken.py").write_text("def f(:\n")
    (tmp_path / "boot.py").write_text("")
    (tmp_path / "main.py").write_text("")
    monkeypatch.setattr(image, "ROOT", tmp_path)
    monkeypatch.setattr(image, "PACKAGES", {"lib": "lib"})
    try:
        image.build(tmp_path / "x.img", board="handheld")
    except image.ImageError as e:
        assert "lib/broken.py" in str(e)
    else:
        raise AssertionError("a syntax error built an image")
