"""python -m virtnet"""

from virtnet.launcher import run

run(prog="python -m virtnet")
