
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/ir/arena.c" "ir/CMakeFiles/graft_ir.dir/arena.c.o" "gcc" "ir/CMakeFiles/graft_ir.dir/arena.c.o.d"
  "/work/main/ir/attr.c" "ir/CMakeFiles/graft_ir.dir/attr.c.o" "gcc" "ir/CMakeFiles/graft_ir.dir/attr.c.o.d"
  "/work/main/ir/dtype.c" "ir/CMakeFiles/graft_ir.dir/dtype.c.o" "gcc" "ir/CMakeFiles/graft_ir.dir/dtype.c.o.d"
  "/work/main/ir/graph.c" "ir/CMakeFiles/graft_ir.dir/graph.c.o" "gcc" "ir/CMakeFiles/graft_ir.dir/graph.c.o.d"
  "/work/main/ir/optable.c" "ir/CMakeFiles/graft_ir.dir/optable.c.o" "gcc" "ir/CMakeFiles/graft_ir.dir/optable.c.o.d"
  "/work/main/ir/print.c" "ir/CMakeFiles/graft_ir.dir/print.c.o" "gcc" "ir/CMakeFiles/graft_ir.dir/print.c.o.d"
  "/work/main/ir/shape_elementwise.c" "ir/CMakeFiles/graft_ir.dir/shape_elementwise.c.o" "gcc" "ir/CMakeFiles/graft_ir.dir/shape_elementwise.c.o.d"
  "/work/main/ir/shape_stubs.c" "ir/CMakeFiles/graft_ir.dir/shape_stubs.c.o" "gcc" "ir/CMakeFiles/graft_ir.dir/shape_stubs.c.o.d"
  "/work/main/ir/status.c" "ir/CMakeFiles/graft_ir.dir/status.c.o" "gcc" "ir/CMakeFiles/graft_ir.dir/status.c.o.d"
  "/work/main/ir/verify.c" "ir/CMakeFiles/graft_ir.dir/verify.c.o" "gcc" "ir/CMakeFiles/graft_ir.dir/verify.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
