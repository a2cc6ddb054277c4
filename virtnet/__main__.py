"""python -m virtnet"""

from virtnet.cli import run

run()
