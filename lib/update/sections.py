"""The payload of packages of kinds 2 (files) and 3 (terminal parameters) as it streams in, record
by record (lib/update/package.py; tools/bank/PROTOCOL.md): a list of sections, each its name's
length (1 byte), its name (ASCII), its content's length (u32 big-endian), its content. A record
may end anywhere, a header's middle too; each section's content goes to the file its installer
opens for it, never whole in RAM. One reader for both kinds, so that they read the format alike;
imported when an installer is made (package.installer_for), not with update.config, whose
kernel() every card flow calls.

    r = Reader(open_section, "files", 64)   # open_section(name): a file open for writing, or
                                            # BadPackage; a longer name refused at its first byte
    r.write(chunk)                          # package.install's records, in order
    r.names                                 # the sections begun, in order
    r.cut_short()                           # a section begun and not ended (at finish())
    r.close()                               # the current section's file closed (abort())
"""


class Reader:
    def __init__(self, open_section, what, name_max):
        self.open_section = open_section  # sees names as it stands: a name twice is in it
        self.what = what  # in the errors: "files: ..."
        self.name_max = name_max
        self._f = None  # the current section's file
        self._left = 0  # its content's bytes still to come
        self._head = bytearray()  # a section's header as far as it has come
        self.names = []

    def write(self, chunk):
        chunk = memoryview(chunk)
        while len(chunk):
            if self._f is None:
                chunk = self._header(chunk)
                continue
            n = min(self._left, len(chunk))
            self._f.write(chunk[:n])
            self._left -= n
            chunk = chunk[n:]
            if not self._left:
                self.close()

    def _header(self, chunk):
        """Take a section's header from chunk (with what earlier records brought of it): the
        rest of chunk."""
        h = self._head
        if not h:
            h.append(chunk[0])
            chunk = chunk[1:]
            if h[0] > self.name_max:
                from update.package import BadPackage

                raise BadPackage("%s: a name longer than %d" % (self.what, self.name_max))
        need = 1 + h[0] + 4 - len(h)
        h.extend(chunk[:need])
        chunk = chunk[need:]
        if len(h) < 1 + h[0] + 4:
            return chunk
        name = bytes(h[1:1 + h[0]]).decode()
        self._left = int.from_bytes(h[1 + h[0]:], "big")
        self._head = bytearray()
        self._f = self.open_section(name)
        self.names.append(name)
        if not self._left:
            self.close()
        return chunk

    def close(self):
        f, self._f = self._f, None
        if f is not None:
            f.close()

    def cut_short(self):
        return self._f is not None or bool(self._head)
