"""A simulator the rig has attached, as the tests of the models drive it: its control (`do`), its
state (`state`), and the pty where independent host software reaches it (`tty`)."""


class Model:
    def __init__(self, vdevice, name, pty=None):
        self.rig, self.name, self.pty = vdevice.rig, name, pty
        self.tty = str(vdevice.state_dir / "rig" / (name + ".tty"))

    def do(self, action, **args):
        return self.rig.call("do", name=self.name, action=action, **args)

    def state(self):
        return self.rig.call("model", name=self.name)
