"""Everything that talks to a container engine: translate a profile into an engine request,
observe a container, compare the two, launch, audit and report. Imports `policy`, never the
other way round. Heavy imports (the docker SDK) happen inside the functions that need them, so
`policy --version` and `policy validate` stay fast.
"""
