# Empty compiler generated dependencies file for graft_ir.
# This may be replaced when dependencies are built.
