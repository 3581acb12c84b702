"""Build hook: the wheel carries the top-level data folders inside the package —
`lut_tables/` (the shipped tables) as `latbench/lut/tables/` and `device_scripts/` (run on or for
devices) as `latbench/devices/scripts/`.

Both stay at the top of the source tree, where users and docs find them; latbench reads them there
in a checkout and from the package in an installed wheel. Everything else is in setup.cfg.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithTables(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads lut_tables/ in place
            return
        root, lib = Path(__file__).resolve().parent, Path(self.build_lib) / "latbench"
        for src, dest in (("lut_tables", lib / "lut" / "tables"), ("device_scripts", lib / "devices" / "scripts")):
            shutil.copytree(root / src, dest, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithTables})
