file(REMOVE_RECURSE
  "libgraft_ir.a"
)
