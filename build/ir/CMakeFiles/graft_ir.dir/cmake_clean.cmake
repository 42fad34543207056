file(REMOVE_RECURSE
  "CMakeFiles/graft_ir.dir/arena.c.o"
  "CMakeFiles/graft_ir.dir/arena.c.o.d"
  "CMakeFiles/graft_ir.dir/attr.c.o"
  "CMakeFiles/graft_ir.dir/attr.c.o.d"
  "CMakeFiles/graft_ir.dir/dtype.c.o"
  "CMakeFiles/graft_ir.dir/dtype.c.o.d"
  "CMakeFiles/graft_ir.dir/graph.c.o"
  "CMakeFiles/graft_ir.dir/graph.c.o.d"
  "CMakeFiles/graft_ir.dir/optable.c.o"
  "CMakeFiles/graft_ir.dir/optable.c.o.d"
  "CMakeFiles/graft_ir.dir/print.c.o"
  "CMakeFiles/graft_ir.dir/print.c.o.d"
  "CMakeFiles/graft_ir.dir/shape_elementwise.c.o"
  "CMakeFiles/graft_ir.dir/shape_elementwise.c.o.d"
  "CMakeFiles/graft_ir.dir/shape_stubs.c.o"
  "CMakeFiles/graft_ir.dir/shape_stubs.c.o.d"
  "CMakeFiles/graft_ir.dir/status.c.o"
  "CMakeFiles/graft_ir.dir/status.c.o.d"
  "CMakeFiles/graft_ir.dir/verify.c.o"
  "CMakeFiles/graft_ir.dir/verify.c.o.d"
  "libgraft_ir.a"
  "libgraft_ir.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/graft_ir.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
