"""Combined DDA/Application Cryptogram Generation (EMV Book 2 section 6.6): the signed dynamic
application data of a GENERATE AC answer checked. The kernel imports it only for a card it does
CDA with, and only at its GENERATE AC.

    ac = cda.verify(icc_key, sent, template, got, un)

icc_key: the ICC public key recovered at ODA; sent: the data the terminal sent that the
transaction data hash covers (the PDOL's data in the GPO, the CDOL1's in the first GENERATE AC
and, for the second, the CDOL2's after them); template: the answer's 77 template value, got:
its objects ({tag: value}); un: the unpredictable number (9F37) the SDAD signs. Each failed
check raises OdaFailed naming it (the kernel sets "CDA failed" in the TVR).
"""

import hashlib

from emv import OdaFailed, oda, tlv


def verify(icc_key, sent, template, got, un):
    """The application cryptogram (8 bytes) the SDAD (9F4B) signs, after Book 2 6.6.2's checks:
    the signature over the unpredictable number (format 05, header, trailer, hash), the ICC
    dynamic data's layout (ICC dynamic number length and number, CID, AC, transaction data
    hash code), its CID the answer's 9F27, and the hash code SHA-1 over `sent` and the answer's
    objects but 9F4B, as the card sent them."""
    sdad = got.get(0x9F4B)
    if sdad is None:
        raise OdaFailed("a plain AC to a request for CDA")
    dyn = oda.verify_dda(icc_key, sdad, un)
    n = dyn[0] if dyn else 0
    if not 2 <= n <= 8 or len(dyn) != n + 30:
        raise OdaFailed("SDAD ICC dynamic data of %d bytes" % len(dyn))
    cid = got.get(0x9F27)
    if not cid or dyn[n + 1] != cid[0]:
        raise OdaFailed("SDAD cryptogram information data")
    h = hashlib.sha1(sent)
    i = 0
    for tag, _, end in tlv.walk(template):
        while template[i] in (0x00, 0xFF):  # padding between objects is no object
            i += 1
        if tag != 0x9F4B:
            h.update(template[i:end])
        i = end
    if h.digest() != dyn[n + 10:]:
        raise OdaFailed("transaction data hash code")
    return dyn[n + 2:n + 10]
