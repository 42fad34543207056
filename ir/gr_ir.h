/* gr_ir.h: graft's graph IR. A gr_graph holds values (graph inputs,
 * parameters, constants, node outputs) and nodes in topological order.
 * Every op is described once in ir/ops.def (arity, attributes with their
 * defaults, shape rule); each ONNX opset's form of an op is mapped by the
 * importer onto the one canonical form described there.
 *
 * Usage:
 *     gr_status st = {0};
 *     gr_graph *g = gr_graph_new("mlp");
 *     gr_shape s = gr_shape_make(2, (int64_t[]){GR_DIM_DYNAMIC, 4});
 *     gr_graph_set_dim_symbol(g, &s, 0, "N");
 *     gr_value *x = gr_graph_add_input(g, "x", GR_DTYPE_F32, &s);
 *     gr_node *n = gr_node_add(g, GR_OP_RELU, "relu0", 1, &x, 1, NULL);
 *     gr_graph_add_output(g, n->outputs[0]);
 *     if (gr_graph_infer_shapes(g, &st) != GR_OK) fprintf(stderr, "%s\n", st.msg);
 *     gr_graph_print(g, stdout);
 *     gr_graph_free(g);
 *
 * Ownership: a graph owns everything reachable from it (an arena); every
 * pointer handed out by these functions is borrowed and lives until
 * gr_graph_free. Functions that can fail return gr_code and fill a gr_status.
 */
#ifndef GR_IR_H
#define GR_IR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------ status */

typedef enum {
    GR_OK = 0,
    GR_ERR_NOMEM,       /* allocation failed */
    GR_ERR_IO,          /* file cannot be read or written */
    GR_ERR_BAD_MODEL,   /* the model breaks the ONNX spec or its own shapes */
    GR_ERR_UNSUPPORTED, /* valid ONNX that graft does not handle (yet) */
    GR_ERR_BAD_ARG,     /* bad option or API argument */
    GR_ERR_INTERNAL,    /* graft's own invariant broken */
    GR_ERR_NUMERIC,     /* NaN/Inf where a number was needed */
} gr_code;

typedef struct {
    gr_code code;
    char msg[2048];
} gr_status;

/* Sets st (if not NULL) and returns code. printf-style message. */
gr_code gr_fail(gr_status *st, gr_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends context to st->msg ("graph 'g': " + old message); returns st->code. */
gr_code gr_status_prefix(gr_status *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *gr_code_name(gr_code code);

#define GR_TRY(expr)                                                           \
    do {                                                                       \
        gr_code gr_try_code_ = (expr);                                         \
        if (gr_try_code_ != GR_OK) return gr_try_code_;                        \
    } while (0)

/* For graft's own invariants only (never user data): reports and aborts. */
#define GR_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond)) gr_assert_fail(#cond, __FILE__, __LINE__);                \
    } while (0)
_Noreturn void gr_assert_fail(const char *cond, const char *file, int line);

/* ------------------------------------------------------------------ memory */

/* malloc/calloc/realloc wrappers that honour allocation-failure injection. */
void *gr_malloc(size_t size);
void *gr_calloc(size_t count, size_t size);
void *gr_realloc(void *ptr, size_t size);
void gr_free(void *ptr);
/* Test hook: the nth allocation from now (1-based) and every later one fail;
 * 0 turns injection off. Counts gr_malloc/calloc/realloc and arena chunks. */
void gr_debug_fail_alloc_after(long n);

typedef struct gr_arena gr_arena;
gr_arena *gr_arena_new(void);
void gr_arena_free(gr_arena *a);      /* accepts NULL */
void gr_arena_reset(gr_arena *a);     /* frees all but keeps the arena */
/* Zeroed memory, 64-byte aligned; NULL on failure. */
void *gr_arena_alloc(gr_arena *a, size_t size);
char *gr_arena_strdup(gr_arena *a, const char *s);
char *gr_arena_printf(gr_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
size_t gr_arena_bytes(const gr_arena *a); /* bytes reserved from the system */

/* ------------------------------------------------------------------ random */

/* xoshiro256** (ir/rng.c). The state is plain data: copy it to save it. */
typedef struct {
    uint64_t s[4];
} gr_rng;

void gr_rng_seed(gr_rng *r, uint64_t seed);
uint64_t gr_rng_next(gr_rng *r);
double gr_rng_uniform(gr_rng *r);                   /* [0, 1), 53 bits */
uint64_t gr_rng_below(gr_rng *r, uint64_t n);       /* [0, n), unbiased */
void gr_rng_shuffle(gr_rng *r, int64_t *v, int64_t n); /* Fisher-Yates */
/* A stateless 64-bit mix (splitmix64's finaliser): counter-based random
 * numbers, e.g. dropout masks indexed by (seed, element). */
uint64_t gr_hash64(uint64_t x);

/* ------------------------------------------------------------------ dtypes */

/* Numbered as ONNX's TensorProto.DataType so conversion is the identity. */
typedef enum {
    GR_DTYPE_UNDEFINED = 0,
    GR_DTYPE_F32 = 1,
    GR_DTYPE_U8 = 2,
    GR_DTYPE_I8 = 3,
    GR_DTYPE_U16 = 4,
    GR_DTYPE_I16 = 5,
    GR_DTYPE_I32 = 6,
    GR_DTYPE_I64 = 7,
    GR_DTYPE_STRING = 8,
    GR_DTYPE_BOOL = 9,
    GR_DTYPE_F16 = 10,
    GR_DTYPE_F64 = 11,
    GR_DTYPE_U32 = 12,
    GR_DTYPE_U64 = 13,
    GR_DTYPE_BF16 = 16,
    GR_DTYPE_COUNT_ = 17
} gr_dtype;

size_t gr_dtype_size(gr_dtype t);          /* 0 for undefined/string */
const char *gr_dtype_name(gr_dtype t);     /* "f32", "i64", ... */
int gr_dtype_is_float(gr_dtype t);         /* f16, bf16, f32, f64 */
int gr_dtype_is_int(gr_dtype t);           /* signed or unsigned integers */
int gr_dtype_valid(int t);                 /* a dtype graft can hold */
/* Element i of buf (of dtype t) converted to double / int64. */
double gr_dtype_load_f64(gr_dtype t, const void *buf, int64_t i);
int64_t gr_dtype_load_i64(gr_dtype t, const void *buf, int64_t i);
void gr_dtype_store_f64(gr_dtype t, void *buf, int64_t i, double v);
void gr_dtype_store_i64(gr_dtype t, void *buf, int64_t i, int64_t v);
float gr_f16_to_f32(uint16_t h);
uint16_t gr_f32_to_f16(float f);
float gr_bf16_to_f32(uint16_t h);
uint16_t gr_f32_to_bf16(float f);

/* ------------------------------------------------------------------ shapes */

#define GR_MAX_RANK 8
#define GR_DIM_DYNAMIC (-1) /* unknown extent; sym may name it */
#define GR_RANK_UNKNOWN (-1)

typedef struct {
    int rank;                      /* GR_RANK_UNKNOWN, or 0..GR_MAX_RANK */
    int64_t dims[GR_MAX_RANK];     /* >= 0, or GR_DIM_DYNAMIC */
    const char *syms[GR_MAX_RANK]; /* symbol of a dynamic dim, or NULL */
} gr_shape;

/* dims may be NULL: every dim dynamic. */
gr_shape gr_shape_make(int rank, const int64_t *dims);
gr_shape gr_shape_unknown(void);
gr_shape gr_shape_scalar(void);
int gr_shape_is_static(const gr_shape *s);  /* known rank, all dims known */
int64_t gr_shape_numel(const gr_shape *s);  /* -1 unless static */
/* Same rank and dims; dynamic dims equal only if both carry the same symbol. */
int gr_shape_equal(const gr_shape *a, const gr_shape *b);
/* "[N,3,224,224]" into buf; returns buf. */
char *gr_shape_str(const gr_shape *s, char *buf, size_t size);
/* Row-major strides in elements; returns numel. Requires a static shape. */
int64_t gr_shape_strides(const gr_shape *s, int64_t strides[GR_MAX_RANK]);

/* ----------------------------------------------------------------- tensors */

/* A dense tensor with static shape; data is little-endian, row-major. */
typedef struct {
    gr_dtype dtype;
    gr_shape shape;
    void *data;    /* numel * gr_dtype_size(dtype) bytes (NULL if numel==0) */
    size_t nbytes;
} gr_tensor;

/* --------------------------------------------------------------- op table */

typedef enum {
#define OP(id, name, in_min, in_max, out_min, out_max, flags, shape) GR_OP_##id,
#include "ir/ops.def"
#undef OP
    GR_OP_COUNT_,
    GR_OP_UNKNOWN = GR_OP_COUNT_ /* an op graft does not know; see op_type */
} gr_op;

#define GR_VARIADIC 65535 /* in_max / out_max of variadic ops */

/* Op flags (ops.def). */
enum {
    GR_OPF_ELEMENTWISE = 1 << 0, /* output[i] depends on inputs[i] only */
    GR_OPF_BROADCAST = 1 << 1,   /* inputs broadcast numpy-style */
    GR_OPF_REDUCE = 1 << 2,      /* reduces axes (ReduceX) */
    GR_OPF_SHAPE_ONLY = 1 << 3,  /* moves data; no arithmetic (Reshape...) */
    GR_OPF_COMPARE = 1 << 4,     /* produces bool */
    GR_OPF_INTERNAL = 1 << 5,    /* graft's own op (domain "ai.graft"), built by
                                    the training passes, never imported */
};

#define GR_INTERNAL_DOMAIN "ai.graft"


typedef enum {
    GR_ATTR_UNDEFINED = 0,
    GR_ATTR_FLOAT = 1,  /* numbered as ONNX's AttributeProto.AttributeType */
    GR_ATTR_INT = 2,
    GR_ATTR_STRING = 3,
    GR_ATTR_TENSOR = 4,
    GR_ATTR_GRAPH = 5,
    GR_ATTR_FLOATS = 6,
    GR_ATTR_INTS = 7,
    GR_ATTR_STRINGS = 8,
} gr_attr_type;

typedef struct {
    const char *name;
    gr_attr_type type;
    int64_t i;            /* INT */
    double f;             /* FLOAT */
    const char *s;        /* STRING */
    int n;                /* INTS, FLOATS, STRINGS: element count */
    int64_t *ints;
    double *floats;
    const char **strings;
    gr_tensor *tensor;    /* TENSOR */
} gr_attr;

/* One attribute of an op's schema, with its default (ops.def). */
typedef struct {
    const char *name;
    gr_attr_type type;
    int has_default;     /* 0: absent unless given (required or optional) */
    int64_t i;
    double f;
    const char *s;
} gr_attr_schema;

typedef struct gr_graph gr_graph;
typedef struct gr_node gr_node;
typedef struct gr_value gr_value;

/* Shape rule: sets dtype and shape of every output of n from its inputs
 * (reading constant inputs where needed). Unknown extents propagate as
 * GR_DIM_DYNAMIC; contradictions are GR_ERR_BAD_MODEL naming the node. */
typedef gr_code (*gr_shape_fn)(gr_graph *g, gr_node *n, gr_status *st);

typedef struct {
    const char *name;    /* ONNX op_type */
    int in_min, in_max;
    int out_min, out_max;
    unsigned flags;
    gr_shape_fn shape;
    const gr_attr_schema *attrs; /* n_attrs entries */
    int n_attrs;
} gr_op_info;

const gr_op_info *gr_op_info_of(gr_op op);
const char *gr_op_name(gr_op op);
/* GR_OP_UNKNOWN if name is not an op of the default domain graft knows. */
gr_op gr_op_from_name(const char *name);
const gr_attr_schema *gr_op_attr_schema(gr_op op, const char *attr_name);

/* ------------------------------------------------------------------ values */

typedef enum {
    GR_VALUE_INPUT,  /* graph input, fed at run time */
    GR_VALUE_PARAM,  /* named weight (initializer or lifted Constant) */
    GR_VALUE_CONST,  /* constant data that is not a weight */
    GR_VALUE_NODE,   /* produced by a node */
} gr_value_kind;

/* Where a parameter comes from: the imported model (pretrained), or a
 * transfer-learning pass that added it (a new head, an adapter). The "train"
 * pass and the regularizers tell them apart by it. */
typedef enum {
    GR_ORIGIN_MODEL,    /* imported (pretrained) */
    GR_ORIGIN_HEAD,     /* the new classifier of the "head" pass */
    GR_ORIGIN_ADAPTER,  /* an adapter's parameter (LoRA, bottleneck, IA3) */
} gr_param_origin;

struct gr_value {
    const char *name;    /* unique in the graph */
    int id;              /* index in g->values (stable until compaction) */
    gr_value_kind kind;
    gr_dtype dtype;      /* GR_DTYPE_UNDEFINED until inferred */
    gr_shape shape;
    gr_node *producer;   /* NODE only */
    int producer_output; /* index among producer's outputs */
    void *data;          /* PARAM/CONST: dense data, nbytes long */
    size_t nbytes;
    int trainable;       /* PARAM: may be trained */
    gr_param_origin origin; /* PARAM: the model's own, or added by a pass */
    /* PARAM: data is only the initial value; the value changes from run to
     * run (a weight being trained, optimizer state, BatchNorm running
     * statistics). Not constant: passes never fold it, and codegen gives
     * it a state buffer that persists across runs (gr_session_state). */
    int variable;
    /* Type the model declared for this value (graph outputs, value_info),
     * checked against inference; has_declared is 0 when none was given. */
    int has_declared;
    gr_dtype declared_dtype;
    gr_shape declared_shape;
};

/* ------------------------------------------------------------------- nodes */

struct gr_node {
    const char *name;     /* unique in the graph (generated if empty) */
    int id;
    gr_op op;
    const char *op_type;  /* ONNX op_type (also for GR_OP_UNKNOWN) */
    const char *domain;   /* "" for the default domain */
    int n_inputs;
    gr_value **inputs;    /* NULL entries: omitted optional inputs */
    int n_outputs;
    gr_value **outputs;   /* NULL entries: omitted optional outputs */
    int n_attrs;
    gr_attr *attrs;
    int dead;             /* removed; dropped by gr_graph_compact */
    int group;            /* fusion group (0: none), set by the "fuse" pass:
                             nodes of one group compile into one kernel,
                             emitted where the group's last node stands */
};

typedef struct {
    const char *domain; /* "" for the default domain */
    int64_t version;
} gr_opset;

typedef struct {
    const char *key;
    const char *value;
} gr_metadata;

/* Training graphs (built by the training passes). */
typedef struct {
    gr_value *param; /* a trainable variable PARAM */
    gr_value *grad;  /* d loss / d param, same dtype and shape */
} gr_grad;

typedef struct {
    gr_value *state; /* a variable PARAM */
    gr_value *next;  /* its value after each run (same dtype and shape) */
} gr_update;

struct gr_graph {
    gr_arena *arena;
    const char *name;
    /* Model-level facts kept for export and inspection. */
    int64_t ir_version;
    const char *producer_name, *producer_version, *domain, *doc;
    int64_t model_version;
    int n_opsets;
    gr_opset *opsets;
    int n_metadata;
    gr_metadata *metadata;
    int64_t opset;                 /* imported default-domain opset */
    int n_constants_lifted;        /* Constant nodes turned into values */

    int n_values, cap_values;
    gr_value **values;
    int n_nodes, cap_nodes;
    gr_node **nodes;               /* topological order */
    int n_inputs, cap_inputs;
    gr_value **inputs;             /* runtime inputs, in model order */
    int n_outputs, cap_outputs;
    gr_value **outputs;
    /* Training (zero for inference graphs). The loss, the gradients and
     * the updates' next values are roots: dead-code elimination keeps
     * what computes them. After a run, every update's state takes the
     * value of next, as if all were assigned at once. */
    gr_value *loss;                /* scalar f32 that autodiff differentiates */
    int n_grads, cap_grads;
    gr_grad *grads;
    int n_updates, cap_updates;
    gr_update *updates;
    void *name_index;              /* private: value lookup by name */
    int name_counter;              /* private: unique-name generator */
};

/* ------------------------------------------------------------------ graphs */

gr_graph *gr_graph_new(const char *name); /* NULL on allocation failure */
void gr_graph_free(gr_graph *g);          /* accepts NULL */

/* Values. name may be NULL for a generated unique name; names must be unique
 * (NULL is returned with st set on a duplicate). */
gr_value *gr_graph_add_input(gr_graph *g, const char *name, gr_dtype dtype,
                             const gr_shape *shape);
/* kind PARAM or CONST; copies nbytes of data (must match dtype and shape). */
gr_value *gr_graph_add_data(gr_graph *g, gr_value_kind kind, const char *name,
                            gr_dtype dtype, const gr_shape *shape,
                            const void *data);
gr_value *gr_graph_add_value(gr_graph *g, const char *name, gr_value_kind kind);
gr_code gr_graph_add_output(gr_graph *g, gr_value *v);
gr_value *gr_graph_find(const gr_graph *g, const char *name);
gr_node *gr_graph_find_node(const gr_graph *g, const char *name);
/* A name not yet used in g, built from base ("base", "base_1", ...). */
const char *gr_graph_unique_name(gr_graph *g, const char *base);
/* Renames v (name must be unused). */
gr_code gr_value_rename(gr_graph *g, gr_value *v, const char *name);

/* Nodes. The node gets n_outputs fresh NODE values named out_names[i]
 * (NULL array or NULL entry: generated; "" entry: omitted output).
 * Inputs may contain NULL (omitted optional). Appended at the end of the
 * node list: call gr_graph_toposort after inserting in the middle. */
gr_node *gr_node_add(gr_graph *g, gr_op op, const char *name, int n_inputs,
                     gr_value *const *inputs, int n_outputs,
                     const char *const *out_names);
/* Marks n dead; its outputs keep existing until compaction. */
void gr_node_remove(gr_graph *g, gr_node *n);
/* Replaces every use of old (node inputs, graph outputs) by new. */
void gr_value_replace_uses(gr_graph *g, gr_value *old_value, gr_value *new_value);
/* Drops dead nodes and values no node, input or output refers to;
 * renumbers ids. */
void gr_graph_compact(gr_graph *g);
/* Stable topological sort; a cycle is GR_ERR_BAD_MODEL naming a node on it. */
gr_code gr_graph_toposort(gr_graph *g, gr_status *st);
/* counts[v->id] = number of node inputs and graph outputs using v.
 * counts must hold g->n_values ints. */
void gr_graph_count_uses(const gr_graph *g, int *counts);

/* Attributes. Setters copy their arguments into the graph. */
gr_code gr_node_set_int(gr_graph *g, gr_node *n, const char *name, int64_t v);
gr_code gr_node_set_float(gr_graph *g, gr_node *n, const char *name, double v);
gr_code gr_node_set_string(gr_graph *g, gr_node *n, const char *name,
                           const char *v);
gr_code gr_node_set_ints(gr_graph *g, gr_node *n, const char *name, int count,
                         const int64_t *v);
gr_code gr_node_set_floats(gr_graph *g, gr_node *n, const char *name,
                           int count, const double *v);
gr_code gr_node_set_strings(gr_graph *g, gr_node *n, const char *name,
                            int count, const char *const *v);
gr_code gr_node_set_tensor(gr_graph *g, gr_node *n, const char *name,
                           const gr_tensor *t);
/* The attribute as set on the node, or NULL. */
const gr_attr *gr_node_attr(const gr_node *n, const char *name);
/* Value of an attribute, or its schema default, or fallback when neither. */
int64_t gr_node_int(const gr_node *n, const char *name, int64_t fallback);
double gr_node_float(const gr_node *n, const char *name, double fallback);
const char *gr_node_string(const gr_node *n, const char *name,
                           const char *fallback);
/* INTS attribute: returns count (-1 if absent), *v points into the graph. */
int gr_node_ints(const gr_node *n, const char *name, const int64_t **v);

/* Training: records a gradient / an update (see gr_graph). */
gr_code gr_graph_add_grad(gr_graph *g, gr_value *param, gr_value *grad);
gr_code gr_graph_add_update(gr_graph *g, gr_value *state, gr_value *next);
/* The gradient recorded for param, or NULL. */
gr_value *gr_graph_grad_of(const gr_graph *g, const gr_value *param);

/* A deep copy of g (values, nodes, attributes, data, training fields), in
 * a new arena; NULL on allocation failure. Node and value ids and order
 * are kept. */
gr_graph *gr_graph_clone(const gr_graph *g);

/* Constant inputs. A value has constant data if it is a CONST or a PARAM
 * that is not variable. */
int gr_value_is_constant(const gr_value *v);
/* Reads up to max elements of an integer constant as int64; returns the
 * count, or -1 if v is NULL, not constant or not an integer tensor. */
int64_t gr_value_const_ints(const gr_value *v, int64_t *out, int64_t max);
/* Element count of v (static shape), or -1. */
int64_t gr_value_numel(const gr_value *v);
/* Makes v a CONST value holding t's data (copied); v loses its producer. */
gr_code gr_value_set_const(gr_graph *g, gr_value *v, const gr_tensor *t,
                           gr_status *st);

/* Turns graph input v into a CONST value holding t (same dtype; t's shape
 * must fit v's known dims) and removes it from g->inputs. For inputs whose
 * values determine shapes (a test's Reshape target, say). */
gr_code gr_graph_bind_input(gr_graph *g, gr_value *v, const gr_tensor *t,
                            gr_status *st);

/* Shape helpers for shape rules. */
gr_code gr_graph_set_dim_symbol(gr_graph *g, gr_shape *s, int axis,
                                const char *sym);
/* Numpy broadcast of a and b into out; contradictions are GR_ERR_BAD_MODEL. */
gr_code gr_shape_broadcast(const gr_shape *a, const gr_shape *b,
                           gr_shape *out, const gr_node *n, gr_status *st);

/* Runs the shape rule of one node. Unknown ops give outputs of unknown
 * dtype and shape. */
gr_code gr_node_infer(gr_graph *g, gr_node *n, gr_status *st);
/* Runs every node's shape rule in order. */
gr_code gr_graph_infer_shapes(gr_graph *g, gr_status *st);

/* Checks every invariant: unique names, producer links, topological order,
 * arities and attribute types against the op table, data sizes of PARAM and
 * CONST values, outputs and shapes of every node against its shape rule
 * (when shapes are known). */
gr_code gr_graph_verify(const gr_graph *g, gr_status *st);

/* Readable text form of the whole graph. */
void gr_graph_print(const gr_graph *g, FILE *out);
void gr_node_print(const gr_node *n, FILE *out);

/* GR_ERR_UNSUPPORTED listing every op type graft does not know, each with
 * the first node that uses it, in one message; GR_OK if there is none. */
gr_code gr_graph_check_supported(const gr_graph *g, gr_status *st);

/* Element count and bytes of all PARAM values. */
void gr_graph_param_stats(const gr_graph *g, int64_t *count, int64_t *bytes);

/* What `graft inspect` reports: op histogram and parameters grouped by the
 * prefix of their names (up to the first '.', else the first '_'). */
typedef struct {
    const char *key;     /* op type ("domain.Op" outside the default domain)
                            or parameter-name prefix */
    int64_t count;       /* nodes, or parameter elements */
    int64_t bytes;       /* parameter bytes (groups only) */
    const gr_node *first;/* first node of that op type (histogram only) */
} gr_stat_entry;

typedef struct {
    int n_ops;
    gr_stat_entry *ops;      /* by descending count, then name */
    int n_groups;
    gr_stat_entry *groups;   /* in order of first appearance */
    int64_t param_count, param_bytes, n_params;
    int n_unsupported;       /* distinct unknown op types */
} gr_graph_stats;

/* Fills stats; its arrays come from g's arena (freed with g). */
gr_code gr_graph_stats_compute(gr_graph *g, gr_graph_stats *stats,
                               gr_status *st);

/* ------------------------------------------------------------------- plans */

/* A compiled model: buffers and the steps that compute them. Codegen builds
 * it (JIT or, for objects, as data); the runtime runs it. A step's kernel
 * computes tasks [begin, end) of its n_tasks; tasks write disjoint outputs,
 * so any split over threads gives bit-identical results.
 * Kernel arguments: args[0..n_args-1] are the step's buffers, and
 * args[n_args] is the calling thread's scratch workspace of at least
 * workspace_bytes (64-byte aligned; NULL when workspace_bytes is 0). */
typedef void (*gr_kernel_fn)(void *const *args, int64_t begin, int64_t end);

typedef enum {
    GR_BUF_ARENA,   /* intermediate, at offset in the run-time arena */
    GR_BUF_CONST,   /* weight or constant, at offset in plan->consts */
    GR_BUF_INPUT,   /* caller's input number index */
    GR_BUF_OUTPUT,  /* caller's output number index */
    GR_BUF_STATE,   /* variable parameter, at offset in the session's state
                       (which starts as a copy of plan->state_init) and
                       persists from run to run */
} gr_buffer_kind;

typedef struct {
    const char *name;
    gr_buffer_kind kind;
    int index;          /* INPUT/OUTPUT: position among the graph's */
    size_t offset;      /* ARENA/CONST/STATE: byte offset */
    size_t nbytes;
    gr_dtype dtype;
    gr_shape shape;     /* static */
} gr_buffer;

typedef struct {
    const char *name;   /* kernel (for --verbose and profiles) */
    gr_kernel_fn fn;
    int n_args;
    int *args;          /* buffer ids, in the kernel's argument order */
    int64_t n_tasks;    /* >= 1 */
    size_t workspace_bytes; /* per thread; see above */
} gr_step;

typedef struct gr_plan {
    gr_arena *arena;        /* owns the arrays below */
    int n_buffers;
    gr_buffer *buffers;
    int n_steps;
    gr_step *steps;
    size_t arena_bytes;     /* size of the run-time arena */
    size_t arena_separate;  /* what the arena would take without in-place
                               buffers (--verbose; 0 when unknown) */
    size_t const_bytes;
    void *consts;           /* weights and constants, 64-byte aligned */
    size_t state_bytes;
    void *state_init;       /* initial state (variable parameters), 64-byte
                               aligned; a session copies it */
    int n_inputs, n_outputs;
    int *inputs, *outputs;  /* buffer ids in the graph's order */
    double compile_ms;      /* time spent in codegen */
    void *owner;            /* keeps the code alive (the JIT) */
    void (*release)(void *owner);
} gr_plan;

/* Releases the plan, its constants and (through release) its code. */
void gr_plan_free(gr_plan *p);
/* The id of the buffer of that name (a graph input, output or variable
 * parameter keeps its value's name), or -1. */
int gr_plan_find_buffer(const gr_plan *p, const char *name);
/* The memory of buffer number `buffer` in a run: arena and state are that
 * run's arena (arena_bytes) and state (state_bytes, a copy of state_init);
 * inputs and outputs the caller's arrays in the graph's order. */
void *gr_plan_buffer_data(const gr_plan *p, int buffer, void *arena, void *state,
                          void *const *inputs, void *const *outputs);

/* Objects compiled ahead of time (`graft compile`; codegen/aot.c) describe
 * their plans with these, as internal constant globals, and hand the model
 * to the runtime library (runtime/aot.c) on every call. Every field is 8
 * bytes wide so the LLVM struct codegen emits has this exact layout. */
typedef struct {
    const void *plan;             /* gr_plan_serialize's bytes */
    uint64_t plan_bytes;
    const void *consts;           /* plan's const_bytes, 64-byte aligned */
    const void *state_init;       /* plan's state_bytes, 64-byte aligned */
    const gr_kernel_fn *kernels;  /* one per step, in step order */
} gr_aot_plan;

/* What the training step's run-time scalars need besides the learning
 * rate (see "training loop" in runtime/gr_runtime.h). */
typedef struct {
    int64_t adam;                 /* Adam/AdamW scalars, else SGD's */
    int64_t accumulate;           /* >= 1 */
    double dampening, beta1, beta2, weight_decay;
    uint64_t seed;
} gr_aot_optimizer;

#define GR_AOT_VERSION 1

typedef struct {
    uint64_t version;             /* GR_AOT_VERSION */
    gr_aot_plan run;              /* inference */
    gr_aot_plan train;            /* training step (plan NULL without --train) */
    gr_aot_optimizer optimizer;
    void *runtime;                /* the runtime's state, created on first use */
    int64_t n_threads;            /* NAME_set_threads (0: all cores) */
} gr_aot_model;

/* Plans as bytes (ir/plan_blob.c; the format is described there): every
 * buffer, step (name, arguments, tasks, workspace), input, output and size
 * of p, but not its kernels, constants or initial state. *out is
 * gr_malloc'd, *size bytes long. The runtime reads it back
 * (gr_plan_deserialize in runtime/gr_runtime.h). */
gr_code gr_plan_serialize(const gr_plan *p, void **out, size_t *size, gr_status *st);

#endif /* GR_IR_H */
