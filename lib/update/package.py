"""Signed update packages from the issuer (tools/bank/PROTOCOL.md, "Update packages"), verified
as they stream in, and the installer protocol every kind of package is installed through.

The package (all integers big-endian):

    offset  size  field
    0       4     magic b"PTPK"
    4       1     kind: 1 firmware application image, 2 vfs files, 3 terminal parameters
    5       4     version (u32)
    9       4     security version (u32): a package below the installed one is refused
    13      4     payload length (u32)
    17      32    payload SHA-256
    49      256   RSA-2048 PKCS#1 v1.5 signature, SHA-256, over bytes 0..48 (the header)
    305     ...   payload (payload length bytes)

The signer is the issuer's update-signing key (the bank's, apart from its CA and HSM keys); its
public key is the vault's provisioning item "issuer.update": the modulus (256 bytes) followed by
the public exponent (big-endian, the remaining bytes), put there by tools/provision inject as
the issuer CA is.

Verifying (the signature with pow(), lib/emv's RSA recovery):

    v = package.Verifier(key)          # key: (modulus bytes, exponent int)
    h = v.header(first_305_bytes)      # a Header (kind, version, svn, length, digest);
                                       # raises BadPackage: magic, kind, length, signature
    v.feed(chunk)                      # the payload, in order, any sizes
    v.finish()                         # raises BadPackage unless length and SHA-256 match

Installing: one installer per kind, made fresh for each download (lazy import: only the
kind's module is loaded):

    inst = package.installer_for(kind) # Unsupported for a kind this build does not install
    inst.installed()                   # (version, security version) installed now, ints
    inst.begin(header)                 # checks header.svn (and what else the kind needs)
                                       # BEFORE any write: raises Refused (nothing written)
    inst.write(offset, chunk)          # payload bytes at offset, in order, from 0
    inst.finish()                      # called only after Verifier.finish() passed: switch
                                       # to the new content atomically (a power cut at any
                                       # write leaves old or new); raises Refused if it cannot
    inst.abort()                       # drop whatever was written; the old content stays.
                                       # Safe to call at any point, also after a power cut
                                       # (begin() of the next download calls it first)

The kinds' installers: 1 update.ota.Installer, 2 update.files.Installer (ota's), 3
update.config.Installer (pkg's). Each module has a class `Installer()` taking no arguments.

The download (install(), the uplink's 0800/360 records) never holds the package whole: the
first 305 bytes, then records of up to RECORD bytes, each fed to the verifier and written,
then Verifier.finish(), then inst.finish(). Anything wrong (a record missing, the link down, a
bad digest) calls inst.abort(): the next sign-on that offers the package starts it again from 0.
"""
