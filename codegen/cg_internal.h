/* cg_internal.h: what the files of codegen/ share: the module under
 * construction, the kernel scaffolding, loops, typed loads and stores,
 * conversions, and the per-op emitters.
 *
 * A kernel is two LLVM functions: the body
 *     void NAME.body(ptr noalias a0, ..., ptr noalias aN, ptr noalias ws,
 *                    i64 begin, i64 end)
 * that emitters fill, computing tasks [begin, end) of k->n_tasks, and the
 * entry point gr_kernel_fn NAME(ptr args, i64 begin, i64 end) that loads the
 * buffer pointers and the thread's workspace (args[n]) and calls the body
 * (inlined). Buffers never alias within one kernel (the memory planner
 * guarantees it), hence noalias, with one exception: an output the planner
 * computes in place, in the buffer of one of the kernel's inputs (jit.c,
 * "in place"), is no parameter of its own: cg_arg gives that input's
 * parameter for it, so the kernel reads and writes that memory through one
 * pointer, and its IR text (what kernel reuse compares) shows it. The workspace is scratch memory private to
 * the calling thread, k->workspace_bytes long; it does not survive between
 * calls, so a task must not rely on what an earlier task left there.
 *
 * Values in registers ("reg" types): bool is i1, f16/bf16 are float, every
 * other dtype is its own LLVM type. cg_load/cg_store convert. */
#ifndef GR_CG_INTERNAL_H
#define GR_CG_INTERNAL_H

#include <llvm-c/Core.h>

#include "codegen/gr_codegen.h"

#define CG_MAX_ARGS 64

typedef struct cg_module {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef t_void, t_i1, t_i8, t_i16, t_i32, t_i64, t_f32, t_f64, t_ptr;
    char *cpu, *features;   /* host, from LLVM */
    int n_kernels;
    const gr_graph *g;
    /* Set by cg_emit_group while the GEMM-based head of a fusion group is
     * emitted: the kernel computes the group's elementwise members too, as
     * an epilogue (fused.c). */
    const struct cg_epilogue *epi;
    /* Set by jit.c while it emits kernels (NULL otherwise): the plan's
     * bytes of constant n->inputs[slot] (*nbytes long) when no other node,
     * input slot or graph output reads that constant, so that n's kernel may
     * rewrite them in place, in a layout of its own and the same size (the
     * graph's value keeps the original data); NULL when the kernel must read
     * the original layout. */
    void *(*claim_const)(const struct cg_module *m, const gr_node *n, int slot,
                         size_t *nbytes);
    void *claim_ctx;         /* claim_const's (jit.c's layout) */
    /* Set by jit.c while emitting: in_place[v->id] is the input value whose
     * buffer value v is computed in, or NULL (NULL: none is). */
    const gr_value *const *in_place;
} cg_module;

typedef struct {
    cg_module *m;
    LLVMBuilderRef b;        /* = m->b */
    const char *name;        /* entry point symbol */
    LLVMValueRef body;       /* NAME.body */
    LLVMValueRef begin, end; /* task range (i64 params of the body) */
    int n_args;
    const gr_value *arg_values[CG_MAX_ARGS];
    LLVMValueRef args[CG_MAX_ARGS]; /* noalias pointer params of the body */
    LLVMValueRef workspace;  /* per-thread scratch (noalias ptr param) */
    size_t workspace_bytes;  /* set by the emitter if it uses workspace */
    int64_t n_tasks;         /* set by the emitter (default 1) */
    int wide;                /* emitter asks for 512-bit vectors */
    const struct cg_epilogue *epi; /* this kernel's epilogue, or NULL */
} cg_kernel;

/* --- kernel scaffolding (kernel.c) --- */

/* Starts a kernel whose arguments are the given values' buffers, in order,
 * except that a value computed in place (m->in_place) in the buffer of
 * another of the values takes no argument of its own. The builder is
 * positioned in the body's entry block. */
gr_code cg_kernel_begin(cg_module *m, cg_kernel *k, const char *name,
                        int n_values, const gr_value *const *values,
                        gr_status *st);
/* Finishes the body (ret void) and emits the entry point. */
gr_code cg_kernel_end(cg_kernel *k, gr_status *st);
/* The body's pointer parameter for v (which must be one of its values;
 * for a value computed in place, its input's). */
LLVMValueRef cg_arg(const cg_kernel *k, const gr_value *v);

/* --- loops (kernel.c) --- */

#define CG_MAX_ACC 32

typedef struct {
    LLVMBasicBlockRef pre, body, exit;
    LLVMValueRef iv, end;
    int64_t step;
    int n_acc;
    LLVMValueRef acc[CG_MAX_ACC];      /* phis in the body */
    LLVMValueRef acc_init[CG_MAX_ACC];
    LLVMValueRef acc_next[CG_MAX_ACC]; /* set with cg_loop_next */
    LLVMValueRef acc_out[CG_MAX_ACC];  /* after cg_loop_end: final values */
    int vectorize;    /* request reordering vectorisation (reductions) */
} cg_loop;

/* for (iv = start; iv < end; iv += step): returns iv; the builder is in
 * the body. Zero trips are handled. */
LLVMValueRef cg_loop_begin(cg_kernel *k, cg_loop *l, LLVMValueRef start,
                           LLVMValueRef end, int64_t step);
/* A loop-carried value: returns its phi in the body (init on entry). Call
 * right after cg_loop_begin. */
LLVMValueRef cg_loop_acc(cg_kernel *k, cg_loop *l, LLVMValueRef init);
/* Sets the next-iteration value of accumulator i. */
void cg_loop_next(cg_loop *l, int i, LLVMValueRef next);
/* Closes the loop; acc_out[i] holds each accumulator's final value. */
void cg_loop_end(cg_kernel *k, cg_loop *l);

/* --- values (kernel.c) --- */

LLVMValueRef cg_i64(const cg_kernel *k, int64_t v);
LLVMValueRef cg_i32(const cg_kernel *k, int32_t v);
LLVMValueRef cg_f32(const cg_kernel *k, double v);
/* A constant of dtype's register type. */
LLVMValueRef cg_const(const cg_kernel *k, gr_dtype dt, double v);
LLVMTypeRef cg_mem_type(const cg_module *m, gr_dtype dt); /* in memory */
LLVMTypeRef cg_reg_type(const cg_module *m, gr_dtype dt); /* in registers */
int cg_dtype_signed(gr_dtype dt);
/* ptr + index elements of dt. */
LLVMValueRef cg_gep(cg_kernel *k, gr_dtype dt, LLVMValueRef ptr, LLVMValueRef index);
/* Loads element index of a dt buffer, converted to the register type. */
LLVMValueRef cg_load(cg_kernel *k, gr_dtype dt, LLVMValueRef ptr, LLVMValueRef index);
void cg_store(cg_kernel *k, gr_dtype dt, LLVMValueRef ptr, LLVMValueRef index,
              LLVMValueRef value);
/* Converts a register value between dtypes with ONNX Cast semantics
 * (float -> int saturates, NaN -> 0; to bool: != 0). */
LLVMValueRef cg_convert(cg_kernel *k, LLVMValueRef v, gr_dtype from, gr_dtype to);
/* Calls an LLVM intrinsic by name ("llvm.fmuladd") overloaded on the types
 * of its arguments (or on ret_overload if not NULL). */
LLVMValueRef cg_intrinsic(cg_kernel *k, const char *name, LLVMTypeRef overload,
                          int n_args, LLVMValueRef *args);
/* memcpy(dst, src, bytes). */
void cg_memcpy(cg_kernel *k, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef bytes);

/* --- convolution helpers (conv.c), shared with train_conv.c --- */

/* Reads INTS attribute `name` of ns (x mult) values right-aligned into
 * out3[3 * mult] (fallback elsewhere and when absent). */
gr_code cg_read_attr3(const gr_node *n, const char *name, int ns, int64_t fallback,
                      int64_t *out3, int mult, gr_status *st);
/* <VL x T> splat of scalar s; cg_splat_i32: of the i32 constant c. */
LLVMValueRef cg_splat(cg_kernel *k, int vl, LLVMValueRef s);
LLVMValueRef cg_splat_i32(cg_kernel *k, int vl, int64_t c);

/* --- per-op emitters ---
 * An emitter fills a kernel for one node: it calls cg_kernel_begin with the
 * node's (non-NULL) inputs then outputs, emits the body, sets n_tasks, and
 * calls cg_kernel_end. The table in emit.c maps ops to emitters. */
typedef gr_code (*cg_emit_fn)(cg_module *m, const gr_node *n, const char *name,
                              cg_kernel *k, gr_status *st);

/* Begins a kernel over all non-NULL inputs then outputs of n. */
gr_code cg_kernel_begin_node(cg_module *m, cg_kernel *k, const char *name,
                             const gr_node *n, gr_status *st);

/* emit.c: the emitter for op, or NULL if graft has no kernel for it.
 * Emitters are listed by family in codegen/kernels_*.def as
 * K(OP_ID, emitter_function). */
cg_emit_fn cg_emitter(gr_op op);

#define K(op, fn) gr_code fn(cg_module *m, const gr_node *n, const char *name, \
                             cg_kernel *k, gr_status *st);
#include "codegen/kernels.def"
#undef K
/* train_misc.c: Dropout whose ratio or training_mode is a run-time input
 * (cg_emit_dropout hands it over). */
gr_code cg_emit_dropout_runtime(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                                gr_status *st);

/* fused.c: one kernel for a fusion group (members in topological order,
 * the root last). cg_group_check says whether every member can be chained:
 * elementwise members, and either at most one head (a float Conv, MatMul
 * or Gemm: cg_epilogue_head) whose kernel runs the others as an epilogue
 * on each finished part of its output, in the root's buffer, or a
 * reduction root (cg_prologue_root) whose kernel evaluates the others at
 * each element of its data input (a prologue). */
#define CG_MAX_GROUP 64
gr_code cg_group_check(const gr_node *const *members, int n_members, gr_status *st);
/* Whether n can head a fusion group (its emitter takes an epilogue). */
int cg_epilogue_head(const gr_node *n);
/* For cg_kernel_begin_node: with an epilogue, the head's input values
 * (values[0..*count)) are followed by the group's other operands and the
 * root's output (instead of the head's); *count is updated. */
void cg_epilogue_values(const struct cg_epilogue *e, const gr_value **values, int *count);
/* The value whose buffer holds v in kernel k: the root's output for the
 * head's output when k has an epilogue, else v. */
const gr_value *cg_epilogue_alias(const cg_kernel *k, const gr_value *v);
/* Runs k's epilogue over the len elements of the output from element
 * offset (a direct kernel's finished plane). */
void cg_epilogue_plane(cg_kernel *k, LLVMValueRef offset, int64_t len);
/* A reduction's prologue: a group's elementwise members, which compute
 * the reduction's data input from the group's operands (fused.c). */
struct cg_prologue;
int cg_prologue_n_operands(const struct cg_prologue *p);
gr_value *cg_prologue_operand(const struct cg_prologue *p, int i);
/* The reduction input's element (register type of its dtype) from the
 * operands' registers at that element (regs[i]: operand i). */
LLVMValueRef cg_prologue_value(cg_kernel *k, struct cg_prologue *p, LLVMValueRef *regs);
/* reduce.c: whether n (a reduction or global pool with constant axes)
 * can be the root of a group whose other members compute its data input;
 * and its kernel with that prologue (arguments: the prologue's operands,
 * then n's output). */
int cg_prologue_root(const gr_node *n);
gr_code cg_emit_reduce_prologue(cg_module *m, const gr_node *n, struct cg_prologue *pro,
                                const char *name, cg_kernel *k, gr_status *st);
gr_code cg_emit_group(cg_module *m, const gr_node *const *members, int n_members,
                      const char *name, cg_kernel *k, gr_status *st);

/* A kernel copying v's bytes from its first argument to its second
 * (arguments: source buffer, destination buffer). */
gr_code cg_emit_copy_buffers(cg_module *m, const char *name, const gr_value *v,
                             cg_kernel *k, gr_status *st);

#endif /* GR_CG_INTERNAL_H */
