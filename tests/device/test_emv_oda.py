# lib/emv/capk.py and the parts of oda.py that need no signing key, on the device: the CA key
# file with real published test keys (their checksums are the schemes' own), the static data to
# be authenticated (EMV Book 3 section 10.3), fDDA's terminal data. Certificates signed with
# private keys are made on the host: tests/host/test_emv_oda_host.py.
import os

from emv import CapkError, OdaFailed, capk, oda

from expect import raises

H = bytes.fromhex
# Visa test CA key 92 (1408 bits) and Mastercard test CA key EF (1984 bits) as terminal
# vendors publish them, with their SHA-1 checksums.
VISA_92 = {"rid": "A000000003", "index": "92", "exponent": "03", "expiry": "291231",
           "checksum": "429C954A3859CEF91295F663C963E582ED6EB253", "modulus": (
               "996AF56F569187D09293C14810450ED8EE3357397B18A2458EFAA92DA3B6DF6514EC060195318FD43BE9"
               "B8F0CC669E3F844057CBDDF8BDA191BB64473BC8DC9A730DB8F6B4EDE3924186FFD9B8C7735789C23A36"
               "BA0B8AF65372EB57EA5D89E7D14E9C7B6B557460F10885DA16AC923F15AF3758F0F03EBD3C5C2C949CBA"
               "306DB44E6A2C076C5F67E281D7EF56785DC4D75945E491F01918800A9E2DC66F60080566CE0DAF8D17EA"
               "D46AD8E30A247C9F")}
MC_EF = {"rid": "A000000004", "index": "EF", "exponent": "03", "expiry": "311231",
         "checksum": "21766EBB0EE122AFB65D7845B73DB46BAB65427A", "modulus": (
             "A191CB87473F29349B5D60A88B3EAEE0973AA6F1A082F358D849FDDFF9C091F899EDA9792CAF09EF28F5D2"
             "2404B88A2293EEBBC1949C43BEA4D60CFD879A1539544E09E0F09F60F065B2BF2A13ECC705F3D468B9D33A"
             "E77AD9D3F19CA40F23DCF5EB7C04DC8F69EBA565B1EBCB4686CD274785530FF6F6E9EE43AA43FDB02CE00D"
             "AEC15C7B8FD6A9B394BABA419D3F6DC85E16569BE8E76989688EFEA2DF22FF7D35C043338DEAA982A02B86"
             "6DE5328519EBBCD6F03CDD686673847F84DB651AB86C28CF1462562C577B853564A290C8556D818531268D"
             "25CC98A4CC6A0BDFFFDA2DCCA3A94C998559E307FDDF915006D9A987B07DDAEB3B")}


def test_published_ca_keys_load_and_are_found():
    store = capk.Store([VISA_92, MC_EF])
    assert len(store) == 2
    k = store.get(H("A0000000031010"), 0x92, "261121")  # the AID's first 5 bytes are the RID
    assert k.rid == H("A000000003") and k.index == 0x92 and k.exponent == 3
    assert k.modulus == H(VISA_92["modulus"]) and len(k.modulus) == 176
    assert len(store.get(H("A000000004"), 0xEF, "311231").modulus) == 248
    with raises(OdaFailed) as e:
        store.get(H("A000000004"), 0xEF, "320101")
    assert str(e.value) == "CA key A000000004/EF expired 311231"
    with raises(OdaFailed) as e:
        store.get(H("A000000004"), 0x92, "261121")
    assert str(e.value) == "no CA key A000000004/92"


def test_a_corrupted_key_refuses_the_file():
    bad = dict(VISA_92)
    bad["modulus"] = VISA_92["modulus"][:-1] + "E"  # one bit
    with raises(CapkError) as e:
        capk.Store([MC_EF, bad])
    assert "A000000003/92: checksum" in str(e.value)
    for field, value in (("exponent", "05"), ("index", "9292"), ("expiry", "2912"), ("rid", "A0000003"),
                         ("checksum", "zz")):
        bad = dict(VISA_92)
        bad[field] = value
        with raises(CapkError):
            capk.Store([bad])
    with raises(CapkError):
        capk.Store([{"rid": "A000000003"}])
    with raises(CapkError):
        capk.Store({"keys": []})


def test_load_from_the_file():
    path = "/capk_test.json"
    try:
        with open(path, "w") as f:
            f.write('[{"rid": "A000000003", "index": "92", "exponent": "03", "expiry": "291231", '
                    '"checksum": "%s", "modulus": "%s"}]' % (VISA_92["checksum"], VISA_92["modulus"]))
        assert capk.Store.load(path).get(H("A000000003"), 0x92, "291231").index == 0x92
        with open(path, "w") as f:
            f.write('[{"rid": ')
        with raises(CapkError):
            capk.Store.load(path)
    finally:
        os.remove(path)


def test_a_held_file_is_read_again_from_its_start():
    # capk.Store.hold(): the file opened once (before the card is read), each get() reading it
    # again from its start; close() closes it, and a get() after opens it as before.
    path = "/capk_test.json"
    try:
        with open(path, "w") as f:
            f.write('[{"rid": "A000000004", "index": "EF", "exponent": "03", "expiry": "311231", "checksum": "%s", '
                    '"modulus": "%s"}, {"rid": "A000000003", "index": "92", "exponent": "03", "expiry": "291231", '
                    '"checksum": "%s", "modulus": "%s"}]' % (MC_EF["checksum"], MC_EF["modulus"],
                                                             VISA_92["checksum"], VISA_92["modulus"]))
        store = capk.Store.load(path).hold()
        for _ in range(2):
            assert store.get(H("A000000003"), 0x92, "261121").modulus == H(VISA_92["modulus"])
            assert store.get(H("A000000004"), 0xEF, "261121").modulus == H(MC_EF["modulus"])
        with raises(OdaFailed):
            store.get(H("A000000003"), 0x93, "261121")
        assert len(store) == 2
        store.close()
        store.close()  # again: nothing to do
        assert store.get(H("A000000003"), 0x92, "261121").index == 0x92
    finally:
        os.remove(path)


def test_two_digit_years():
    # 50-99 are 1950-1999, 00-49 are 2000-2049.
    assert capk.stamp("500101") < capk.stamp("991231") < capk.stamp("000101") < capk.stamp("491231")
    with raises(ValueError):
        capk.stamp("2612")


def _static(records, aip, sda_tag_list):
    return b"".join(bytes(piece) for piece in oda.static_pieces(records, aip, sda_tag_list))


def test_static_data_to_authenticate():
    rec1 = H("700A5A084761739001010119")
    rec11 = H("700A" "5F24032812315F340101")
    # SFI 1-10: the 70 template's value; SFI 11-30: the whole record; then the AIP if 9F4A says.
    assert _static([(1, rec1), (11, rec11)], H("3900"), H("82")) == (
        H("5A084761739001010119") + rec11 + H("3900"))
    assert _static([(2, rec1)], H("3900"), None) == H("5A084761739001010119")
    with raises(OdaFailed) as e:
        _static([(3, H("77045A020102"))], H("3900"), None)
    assert str(e.value) == "record of SFI 3 is not a 70 template"
    with raises(OdaFailed):
        _static([(3, H("7005" "5A0201"))], H("3900"), None)  # malformed
    with raises(OdaFailed):
        _static([(3, rec1 + rec1)], H("3900"), None)  # two templates
    with raises(OdaFailed) as e:
        _static([(1, rec1)], H("3900"), H("829F02"))  # only the AIP may be listed
    assert str(e.value) == "SDA tag list names 829f02"


def test_fdda_terminal_data_and_bad_shapes():
    un, amount, cur, cad = H("01020304"), H("000000000500"), H("0978"), H("01A1B2C3D40080")
    assert oda.fdda_terminal_data(un, amount, cur, cad) == un + amount + cur + cad
    for bad in (cad[:-1], H("02A1B2C3D40080")):
        with raises(OdaFailed):
            oda.fdda_terminal_data(un, amount, cur, bad)
    key = capk.Store([VISA_92]).get(H("A000000003"), 0x92, "261121")
    with raises(OdaFailed) as e:
        oda.recover_issuer_key(key, bytes(175), None, H("03"), H("4761739001010119"), "261121")
    assert str(e.value) == "issuer certificate length 175, key 176"
    with raises(OdaFailed) as e:
        oda.recover_issuer_key(key, b"\xff" * 176, None, H("03"), H("4761739001010119"), "261121")
    assert str(e.value) == "issuer certificate not below the modulus"
