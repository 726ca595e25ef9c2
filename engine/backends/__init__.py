"""Where containers run: the `Engine` interface and its implementations, one module each.

`interface.py` is the Protocol every backend implements and the typed documents it returns;
`docker.py` reaches a Docker engine through the docker SDK.
"""
