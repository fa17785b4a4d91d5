"""The volume backend of tests/env/openstack: Cinder's own fake driver, with volumes as files.

cinder.tests.fake_driver.FakeLoggingVolumeDriver (shipped in python3-cinder) keeps volumes
as records only, but inherits from the LVM driver the path a volume's data is written to:
/dev/mapper/cinder--volumes-volume--<id>. Creating a volume from an image runs qemu-img
convert into that path, which fails on a machine that has no /dev/mapper (no device-mapper
in this kernel), and would write into the host's /dev on one that has. This subclass,
hand-written for the tests, changes only that path: a volume's data is a file under
<state_path>/volumes (inside $KS_OS_DIR, made by `up` and removed by `down`), deleted with
the volume. Everything else, the image copy included (cinder.image.image_utils with the
real qemu-img), is Cinder's own code.
"""
import os

from oslo_config import cfg

from cinder.tests.fake_driver import FakeLoggingVolumeDriver


class FileBackedFakeDriver(FakeLoggingVolumeDriver):
    def _volumes_dir(self):
        d = os.path.join(cfg.CONF.state_path, "volumes")
        os.makedirs(d, exist_ok=True)
        return d

    def local_path(self, volume, vg=None):
        return os.path.join(self._volumes_dir(), volume["name"])

    def delete_volume(self, volume):
        try:
            os.unlink(self.local_path(volume))
        except FileNotFoundError:
            pass
