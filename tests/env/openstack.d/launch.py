#!/usr/bin/python3
"""launch.py NAME ARGS...: run the OpenStack console script NAME (nova-api, glance-manage...).

Debian ships these console scripts in the service packages (nova-api, glance-api...), whose
maintainer scripts want debconf, dbconfig and systemd; tests/env/openstack installs only
the python3-* packages, which hold the code and the entry points, and runs them from here.
"""
import sys
from importlib.metadata import entry_points

if len(sys.argv) < 2:
    sys.exit(__doc__)
name = sys.argv[1]
eps = entry_points(group="console_scripts", name=name)
if not eps:
    sys.exit("launch.py: no console script named %s" % name)
sys.argv = [name] + sys.argv[2:]
sys.exit(next(iter(eps)).load()())
