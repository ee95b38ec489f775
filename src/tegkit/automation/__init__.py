"""Automation: the owner's plan, checked, simulated, optimised and carried out.

plan.py (the data) <- planfile.py (TOML in and out) <- schedule.py (timed rules as instants)
<- engine.py (what is due now) <- runner.py (on a live gateway, through tegkit.route) and
simulate.py (on the simulator's physics, at full speed); suggest.py writes a plan.
"""
