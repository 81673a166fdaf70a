"""`doorwarden demo`: the whole system on one machine, offline, with embedded defaults.

cast.py      who and where: the accounts, the three homes on Elm Street, the agency
datadir.py   the data directory: its lock, the kept secret, --fresh, the footage
seed.py      the accounts, homes, agency and approval, made once (idempotent)
server.py    the real app under uvicorn, in a thread of this process
cameras.py   one in-process camera agent per home, built from the agent's own parts
api.py       a signed-in JSON API client (what the scenario speaks)
documents.py small real PDFs for the warrant and the use policy
scenario.py  the story of --scenario, step by step
doorbell.py  its last two steps: a ring through the agent, and the Home mode
runner.py    puts it together: start, print the sign-ins, run the story, stop on Ctrl-C
"""
