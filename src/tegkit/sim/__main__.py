"""`python -m tegkit.sim`: the same as `teg sim`."""

from tegkit.sim.cli import sim

if __name__ == "__main__":
    sim(prog_name="python -m tegkit.sim")
