/* jit.c: gr_codegen_jit: assigns every value a buffer (inputs, outputs,
 * constants, and intermediates in one arena with liveness-based reuse),
 * emits one kernel per node or fusion group (steps whose code is identical
 * share one function), optimises (O3) and compiles them in parallel, one
 * LLVM context and module per thread, and links the objects with ORC
 * LLJIT, one JIT and resource tracker per plan. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen/cg_build.h"
#include "codegen/cg_internal.h"
#include "codegen/elementwise.h"

typedef struct {
    LLVMOrcLLJITRef jit;
    LLVMOrcResourceTrackerRef rt;
} jit_owner;

static void release_jit(void *p) {
    jit_owner *o = p;
    if (!o) return;
    if (o->rt) {
        LLVMErrorRef e = LLVMOrcResourceTrackerRemove(o->rt);
        if (e) LLVMConsumeError(e);
        LLVMOrcReleaseResourceTracker(o->rt);
    }
    if (o->jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(o->jit);
        if (e) LLVMConsumeError(e);
    }
    gr_free(o);
}

static gr_code llvm_error(gr_status *st, LLVMErrorRef e, const char *what) {
    char *msg = LLVMGetErrorMessage(e);
    gr_fail(st, GR_ERR_INTERNAL, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return GR_ERR_INTERNAL;
}

static double cpu_ms(void) { /* this thread's CPU time */
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void cg_init_llvm(void) {
    static int done;
    if (done) return;
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    LLVMInitializeNativeAsmParser();
    done = 1;
}

gr_code cg_target_machine(const char *cpu, const char *features, int pic,
                          LLVMTargetMachineRef *tm, gr_status *st) {
    char *triple = LLVMGetDefaultTargetTriple(), *err = NULL;
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        gr_fail(st, GR_ERR_INTERNAL, "LLVM target %s: %s", triple, err);
        LLVMDisposeMessage(err);
        LLVMDisposeMessage(triple);
        return GR_ERR_INTERNAL;
    }
    *tm = LLVMCreateTargetMachine(target, triple, cpu, features,
                                  LLVMCodeGenLevelAggressive,
                                  pic ? LLVMRelocPIC : LLVMRelocDefault,
                                  pic ? LLVMCodeModelDefault : LLVMCodeModelJITDefault);
    LLVMDisposeMessage(triple);
    return *tm ? GR_OK : gr_fail(st, GR_ERR_INTERNAL, "cannot create an LLVM target machine");
}

/* --- buffers --- */

typedef struct {
    gr_plan *plan;
    int *buffer_of;   /* value id -> buffer id, -1 none */
    /* Fusion groups: a group runs as one kernel at its root (its last
     * node). root_of[i] is the root of node i's group (i if alone);
     * members of a root are chained first_member[root], next_member[...]
     * in node order, ending with -1. */
    int *root_of, *first_member, *next_member;
    /* in_place[v->id]: the input whose buffer v is computed in, or NULL
     * (see "in place"); handed to the emitters as cg_module.in_place. */
    const gr_value **in_place;
} layout;

/* Removes the members that are not elementwise (a Conv, MatMul or Gemm
 * heading the group) from members/index; returns the new count. */
static int drop_heads(const gr_node **members, int *index, int count) {
    int w = 0;
    for (int i = 0; i < count; i++) {
        if (!(gr_op_info_of(members[i]->op)->flags & GR_OPF_ELEMENTWISE)) continue;
        members[w] = members[i];
        index[w++] = index[i];
    }
    return w;
}

/* Adopts the fusion groups of passes/fuse.c (node->group) that codegen can
 * chain: without their head when its kernel cannot take the rest as an
 * epilogue; a group with a member it cannot chain, or whose reduction root
 * cannot take the rest as a prologue, is compiled node by node. A group is
 * seen first at its root, its highest-indexed node. */
static gr_code plan_groups(const gr_graph *g, layout *lay, gr_status *st) {
    const gr_node *members[CG_MAX_GROUP];
    int index[CG_MAX_GROUP];
    char *seen = gr_calloc((size_t)g->n_nodes + 2, 1);
    if (!seen) return gr_fail(st, GR_ERR_NOMEM, "out of memory planning fusion groups");
    for (int i = 0; i < g->n_nodes; i++) {
        lay->root_of[i] = lay->first_member[i] = i;
        lay->next_member[i] = -1;
    }
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        int id = g->nodes[i]->group;
        if (id <= 0 || id > g->n_nodes || seen[id]) continue;
        seen[id] = 1;
        int count = 0;
        for (int j = 0; j <= i && count < CG_MAX_GROUP; j++)
            if (g->nodes[j]->group == id) {
                members[count] = g->nodes[j];
                index[count++] = j;
            }
        gr_status ignored = {0};
        if (count >= 2 && cg_group_check(members, count, &ignored) != GR_OK)
            count = drop_heads(members, index, count); /* its kernel stays its own */
        /* a reduction root that cannot run its prologue was dropped */
        if (count < 2 || index[count - 1] != i || cg_group_check(members, count, &ignored) != GR_OK)
            continue;
        lay->first_member[i] = index[0];
        for (int k = 0; k < count; k++) {
            lay->root_of[index[k]] = i;
            lay->next_member[index[k]] = k + 1 < count ? index[k + 1] : -1;
        }
    }
    gr_free(seen);
    return GR_OK;
}

static int add_buffer(gr_plan *p, const gr_value *v, gr_buffer_kind kind, int index) {
    gr_buffer *b = &p->buffers[p->n_buffers];
    /* The plan outlives the graph: names are copied (NULL if out of
     * memory; names are for lookups and messages only). */
    b->name = gr_arena_strdup(p->arena, v->name);
    b->kind = kind;
    b->index = index;
    b->nbytes = v->nbytes ? v->nbytes
                          : (size_t)gr_value_numel(v) * gr_dtype_size(v->dtype);
    b->dtype = v->dtype;
    b->shape = v->shape;
    for (int i = 0; i < GR_MAX_RANK; i++) b->shape.syms[i] = NULL; /* static: not needed */
    return p->n_buffers++;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Intermediates: first fit over free blocks, freed after their last use.
 * A node's outputs are placed before its inputs are freed, so a kernel's
 * buffers never overlap (its pointer arguments are noalias), except for an
 * output computed in place.
 *
 * In place: an elementwise kernel (cg_emit_elementwise, cg_emit_dropout, or
 * a fusion group without a Conv/MatMul/Gemm head: fused.c) computes its
 * output y in the buffer of one of its inputs x when
 *   - x is an arena intermediate whose last reader is this kernel;
 *   - x is read by the kernel (an operand of cg_ew_loop) and has y's shape
 *     and dtype, so the same byte size, and is read element i at element i
 *     (never broadcast);
 *   - y has no buffer yet (not a graph output, nor an update computed in
 *     its state: place_updates);
 *   - the kernel reads no other value in x's memory (a view of x).
 * Those kernels (elementwise.c: cg_ew_loop) load every operand of element
 * i before they store element i, and never load element i again after, so
 * the result equals that with separate buffers, whatever the tasks. y's
 * buffer is x's block, which is freed when y dies (x's own release is
 * dropped). In the kernel, y has no pointer parameter of its own: it is
 * read and written through x's (cg_kernel_begin, cg_arg), which keeps
 * noalias true and shows in the IR text that kernel reuse compares.
 *
 * Views: the output of Identity, Reshape, Flatten, Squeeze or Unsqueeze
 * (the same bytes) is its input's arena buffer when that is an arena
 * intermediate, and the node needs no kernel (view_source, is_view).
 * GRAFT_NO_IN_PLACE (environment) turns this off, for comparisons. */
typedef struct {
    size_t offset, size;
} block;

static size_t place(block *free_list, int *n_free, size_t *top, size_t size) {
    for (int i = 0; i < *n_free; i++) {
        if (free_list[i].size < size) continue;
        size_t off = free_list[i].offset;
        free_list[i].offset += size;
        free_list[i].size -= size;
        return off;
    }
    size_t off = *top;
    *top += size;
    return off;
}

static void release_block(block *free_list, int *n_free, size_t offset, size_t size) {
    int i = 0;
    while (i < *n_free && free_list[i].offset < offset) i++;
    memmove(&free_list[i + 1], &free_list[i], sizeof(block) * (size_t)(*n_free - i));
    free_list[i] = (block){offset, size};
    (*n_free)++;
    /* merge neighbours */
    for (int j = 0; j + 1 < *n_free;) {
        if (free_list[j].offset + free_list[j].size == free_list[j + 1].offset) {
            free_list[j].size += free_list[j + 1].size;
            memmove(&free_list[j + 1], &free_list[j + 2], sizeof(block) * (size_t)(*n_free - j - 2));
            (*n_free)--;
        } else {
            j++;
        }
    }
}

/* Frees the arena blocks of values whose last use is the kernel at i. */
static void release_inputs(const gr_graph *g, layout *lay, int i, int *last, block *free_list,
                           int *n_free) {
    gr_plan *p = lay->plan;
    for (int m = lay->first_member[i]; m >= 0; m = lay->next_member[m]) {
        const gr_node *n = g->nodes[m];
        for (int j = 0; j < n->n_inputs + n->n_outputs; j++) {
            const gr_value *v = j < n->n_inputs ? n->inputs[j] : n->outputs[j - n->n_inputs];
            if (!v || v->kind != GR_VALUE_NODE || last[v->id] != i) continue;
            int b = lay->buffer_of[v->id];
            if (b < 0 || p->buffers[b].kind != GR_BUF_ARENA) continue;
            last[v->id] = -1; /* freed once */
            release_block(free_list, n_free, p->buffers[b].offset, align64(p->buffers[b].nbytes));
        }
        if (m == i) break;
    }
}

/* Whether the kernel at root computes element i from its same-shape
 * operands' element i alone, loaded before it stores (see "in place"). */
static int in_place_kernel(const gr_graph *g, const layout *lay, int root) {
    if (lay->first_member[root] == root) {
        cg_emit_fn e = cg_emitter(g->nodes[root]->op);
        return e == cg_emit_elementwise || e == cg_emit_dropout;
    }
    for (int m = lay->first_member[root]; m >= 0; m = lay->next_member[m])
        if (!(gr_op_info_of(g->nodes[m]->op)->flags & GR_OPF_ELEMENTWISE)) return 0;
    return 1;
}

/* Whether the kernel at root loads x as an operand, and x has y's shape
 * and dtype. */
static int reads_like(const gr_graph *g, const layout *lay, int root, const gr_value *x,
                      const gr_value *y) {
    if (x->dtype != y->dtype || !gr_shape_equal(&x->shape, &y->shape)) return 0;
    for (int m = lay->first_member[root]; m >= 0; m = lay->next_member[m]) {
        const gr_node *n = g->nodes[m];
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] == x && cg_ew_reads_input(n, j)) return 1;
    }
    return 0;
}

/* The value whose buffer v's memory was first (before in-place outputs
 * and views took it over). */
static const gr_value *memory_of(const layout *lay, const gr_value *v) {
    while (lay->in_place[v->id]) v = lay->in_place[v->id];
    return v;
}

/* Whether the kernel at root reads, besides x, a value in x's memory (a
 * view of it): its output cannot go there, the two pointers would alias. */
static int reads_alias(const gr_graph *g, const layout *lay, int root, const gr_value *x) {
    const gr_value *mx = memory_of(lay, x);
    for (int m = lay->first_member[root]; m >= 0; m = lay->next_member[m]) {
        const gr_node *n = g->nodes[m];
        for (int j = 0; j < n->n_inputs; j++) {
            const gr_value *u = n->inputs[j];
            if (u && u != x && u->kind == GR_VALUE_NODE && memory_of(lay, u) == mx) return 1;
        }
    }
    return 0;
}

/* The input of the kernel at root (an in_place_kernel) whose arena buffer
 * its output y can take (see "in place"), or NULL. */
static const gr_value *in_place_input(const gr_graph *g, const layout *lay, int root,
                                      const gr_value *y, const int *last) {
    const gr_plan *p = lay->plan;
    size_t nbytes = (size_t)gr_value_numel(y) * gr_dtype_size(y->dtype);
    for (int m = lay->first_member[root]; m >= 0; m = lay->next_member[m]) {
        const gr_node *n = g->nodes[m];
        for (int j = 0; j < n->n_inputs; j++) {
            const gr_value *x = n->inputs[j];
            if (!x || x->kind != GR_VALUE_NODE || last[x->id] != root) continue;
            int b = lay->buffer_of[x->id];
            if (b >= 0 && p->buffers[b].kind == GR_BUF_ARENA && p->buffers[b].nbytes == nbytes &&
                reads_like(g, lay, root, x, y) && !reads_alias(g, lay, root, x))
                return x;
        }
    }
    return NULL;
}

/* Views: the node at i copies its input's bytes (Identity, Reshape,
 * Flatten, Squeeze, Unsqueeze: cg_emit_copy). Its output y can be that
 * input x's arena buffer itself, with no kernel at all, when x still owns
 * its block (last[x] >= 0; see place_output). Returns x, or NULL. */
static const gr_value *view_source(const gr_graph *g, const layout *lay, int i,
                                   const gr_value *y, const int *last) {
    const gr_node *n = g->nodes[i];
    if (lay->first_member[i] != i || cg_emitter(n->op) != cg_emit_copy) return NULL;
    const gr_value *x = n->inputs[0];
    if (!x || x->kind != GR_VALUE_NODE || last[x->id] < 0) return NULL;
    int b = lay->buffer_of[x->id];
    size_t nbytes = (size_t)gr_value_numel(y) * gr_dtype_size(y->dtype);
    return b >= 0 && lay->plan->buffers[b].kind == GR_BUF_ARENA &&
           lay->plan->buffers[b].nbytes == nbytes ? x : NULL;
}

/* Whether node i is a view that needs no kernel (see view_source). */
static int is_view(const gr_graph *g, const layout *lay, int i) {
    const gr_node *n = g->nodes[i];
    return cg_emitter(n->op) == cg_emit_copy && n->outputs[0] && lay->in_place[n->outputs[0]->id];
}

/* Gives output y of the kernel at i (last[y] already final) an arena
 * buffer: with in_place set, x's block when y can be computed in place
 * (x dies here: y frees the block) or is a view of x (one block for both:
 * freed by whichever dies last, the other's release dropped); else a free
 * block. */
static void place_output(const gr_graph *g, layout *lay, int i, const gr_value *y, int in_place,
                         int *last, block *free_list, int *n_free, size_t *top) {
    gr_plan *p = lay->plan;
    int b = add_buffer(p, y, GR_BUF_ARENA, 0);
    const gr_value *x = NULL;
    if (in_place && in_place_kernel(g, lay, i) && (x = in_place_input(g, lay, i, y, last))) {
        last[x->id] = -1; /* its block is y's now */
    } else if (in_place && (x = view_source(g, lay, i, y, last))) {
        if (last[y->id] >= last[x->id]) last[x->id] = -1;
        else last[y->id] = -1;
    }
    if (x) {
        p->buffers[b].offset = p->buffers[lay->buffer_of[x->id]].offset;
        lay->in_place[y->id] = x;
    } else {
        p->buffers[b].offset = place(free_list, n_free, top, align64(p->buffers[b].nbytes));
    }
    lay->buffer_of[y->id] = b;
}

/* Places the intermediates; in place (see above) if in_place is set. */
static gr_code plan_arena(const gr_graph *g, layout *lay, int in_place, gr_status *st) {
    gr_plan *p = lay->plan;
    int *last = gr_calloc((size_t)g->n_values + 1, sizeof(int));
    block *free_list = gr_calloc((size_t)g->n_values + 2, sizeof(block));
    if (!last || !free_list) {
        gr_free(last);
        gr_free(free_list);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory planning buffers");
    }
    /* A value lives until the kernel of its last consumer (a group's
     * kernel runs where its root stands). */
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_inputs; j++) {
            const gr_value *v = g->nodes[i]->inputs[j];
            /* The reader whose kernel runs last, not the last in node order. */
            if (v && last[v->id] < lay->root_of[i]) last[v->id] = lay->root_of[i];
        }
    for (int i = 0; i < g->n_updates; i++) /* copied into the state at the end */
        last[g->updates[i].next->id] = g->n_nodes;
    int n_free = 0;
    size_t top = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (lay->root_of[i] != i) continue; /* inside a group: no buffers */
        const gr_node *n = g->nodes[i];
        for (int j = 0; j < n->n_outputs; j++) {
            const gr_value *v = n->outputs[j];
            if (!v || lay->buffer_of[v->id] >= 0) continue;
            if (last[v->id] < i) last[v->id] = i; /* unused output: free now */
            place_output(g, lay, i, v, in_place, last, free_list, &n_free, &top);
        }
        release_inputs(g, lay, i, last, free_list, &n_free);
    }
    p->arena_bytes = top;
    gr_free(last);
    gr_free(free_list);
    return GR_OK;
}

/* Updates (training graphs): next is computed straight into its state's
 * buffer when that is safe: next comes from an elementwise kernel (which
 * reads element i before writing element i) that runs after every other
 * reader of the state. Otherwise next keeps its own buffer, live to the
 * end, and a copy step after the last kernel moves it into the state. */
static int update_in_place(const gr_graph *g, const layout *lay, const gr_update *u) {
    const gr_node *p = u->next->producer;
    if (u->next->kind != GR_VALUE_NODE || !p || lay->buffer_of[u->next->id] >= 0 ||
        !(gr_op_info_of(p->op)->flags & GR_OPF_ELEMENTWISE) ||
        !gr_shape_equal(&u->next->shape, &u->state->shape))
        return 0;
    int root = lay->root_of[p->id];
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_inputs; j++)
            if (g->nodes[i]->inputs[j] == u->state && lay->root_of[i] > root) return 0;
    for (int k = 0; k < g->n_updates; k++) /* one writer per state */
        if (&g->updates[k] != u && g->updates[k].state == u->state) return 0;
    return 1;
}

static gr_code place_updates(const gr_graph *g, layout *lay, gr_status *st) {
    for (int i = 0; i < g->n_updates; i++) {
        const gr_update *u = &g->updates[i];
        int b = lay->buffer_of[u->state->id];
        if (b < 0 || lay->plan->buffers[b].kind != GR_BUF_STATE)
            return gr_fail(st, GR_ERR_INTERNAL, "update of '%s': not a variable parameter",
                           u->state->name);
        if (!update_in_place(g, lay, u)) continue;
        lay->buffer_of[u->next->id] = b;
        /* state and next: one pointer in the kernel, as for "in place" */
        int root = lay->root_of[u->next->producer->id];
        if (in_place_kernel(g, lay, root) && reads_like(g, lay, root, u->state, u->next))
            lay->in_place[u->next->id] = u->state;
    }
    return GR_OK;
}

/* The arena, planned twice: without in-place buffers (a figure for
 * --verbose: plan->arena_separate), then for good. */
static gr_code plan_intermediates(const gr_graph *g, layout *lay, gr_status *st) {
    gr_plan *p = lay->plan;
    int n = p->n_buffers;
    GR_TRY(plan_arena(g, lay, 0, st));
    size_t separate = p->arena_bytes;
    if (getenv("GRAFT_NO_IN_PLACE")) return p->arena_separate = separate, GR_OK;
    for (int i = 0; i < g->n_values; i++)
        if (lay->buffer_of[i] >= n) lay->buffer_of[i] = -1;
    p->n_buffers = n;
    GR_TRY(plan_arena(g, lay, 1, st));
    p->arena_separate = separate;
    return GR_OK;
}

static gr_code assign_buffers(const gr_graph *g, layout *lay, gr_status *st) {
    gr_plan *p = lay->plan;
    for (int i = 0; i < g->n_values; i++) lay->buffer_of[i] = -1;
    p->n_inputs = g->n_inputs;
    p->n_outputs = g->n_outputs;
    for (int i = 0; i < g->n_inputs; i++)
        p->inputs[i] = lay->buffer_of[g->inputs[i]->id] = add_buffer(p, g->inputs[i], GR_BUF_INPUT, i);
    /* Outputs computed by a node are written in place; others get a copy
     * step (see emit_output_copies). */
    for (int i = 0; i < g->n_outputs; i++) {
        const gr_value *v = g->outputs[i];
        int b = add_buffer(p, v, GR_BUF_OUTPUT, i);
        p->outputs[i] = b;
        if (v->kind == GR_VALUE_NODE && lay->buffer_of[v->id] < 0) lay->buffer_of[v->id] = b;
    }
    size_t consts = 0;
    for (int i = 0; i < g->n_values; i++) {
        const gr_value *v = g->values[i];
        if (!gr_value_is_constant(v)) continue;
        int b = add_buffer(p, v, GR_BUF_CONST, 0);
        p->buffers[b].offset = consts;
        consts += align64(v->nbytes);
        lay->buffer_of[v->id] = b;
    }
    p->const_bytes = consts;
    size_t state = 0;
    for (int i = 0; i < g->n_values; i++) {
        const gr_value *v = g->values[i];
        if (v->kind != GR_VALUE_PARAM || !v->variable) continue;
        int b = add_buffer(p, v, GR_BUF_STATE, 0);
        p->buffers[b].offset = state;
        state += align64(v->nbytes);
        lay->buffer_of[v->id] = b;
    }
    p->state_bytes = state;
    p->consts = gr_malloc(consts ? consts : 64);
    p->state_init = gr_calloc(1, state ? state : 64);
    if (!p->consts || !p->state_init)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory for %zu bytes of weights", consts + state);
    for (int i = 0; i < g->n_values; i++) {
        const gr_value *v = g->values[i];
        int b = lay->buffer_of[v->id];
        if (b < 0 || !v->nbytes || !v->data) continue;
        if (p->buffers[b].kind == GR_BUF_CONST)
            memcpy((char *)p->consts + p->buffers[b].offset, v->data, v->nbytes);
        else if (p->buffers[b].kind == GR_BUF_STATE)
            memcpy((char *)p->state_init + p->buffers[b].offset, v->data, v->nbytes);
    }
    GR_TRY(place_updates(g, lay, st));
    return plan_intermediates(g, lay, st);
}

/* cg_module.claim_const while emitting the kernels of m->g (claim_ctx: its
 * layout, whose constants are placed and filled). */
static void *claim_const(const cg_module *m, const gr_node *n, int slot, size_t *nbytes) {
    const layout *lay = m->claim_ctx;
    const gr_graph *g = m->g;
    const gr_value *v = slot < n->n_inputs ? n->inputs[slot] : NULL;
    int b = v ? lay->buffer_of[v->id] : -1;
    if (b < 0 || lay->plan->buffers[b].kind != GR_BUF_CONST || !v->data) return NULL;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v) return NULL;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_inputs; j++)
            if (g->nodes[i]->inputs[j] == v && (g->nodes[i] != n || j != slot)) return NULL;
    *nbytes = lay->plan->buffers[b].nbytes;
    return (char *)lay->plan->consts + lay->plan->buffers[b].offset;
}

/* --- kernels ---
 *
 * Kernels are compiled in parts: each part is an LLVM context and module
 * of its own, optimised and turned into machine code on a thread of its
 * own (one part per core), then every part's object joins the one JIT.
 * Each kernel is first emitted into a module of its own, in the part with
 * the least work so far, and printed. If an earlier kernel printed the
 * same text, the code is the same: the step calls that kernel's function
 * (a step carries its own buffers, task count and workspace) and the new
 * module is dropped. Otherwise the part's thread links it into the part.
 *
 * Debugging knobs (environment): GRAFT_COMPILE_THREADS=N sets the number
 * of parts; GRAFT_NO_KERNEL_REUSE compiles every kernel; GRAFT_COMPILE_PROFILE
 * compiles each kernel alone, on one thread, and prints its times. */

typedef struct {
    LLVMContextRef ctx;
    LLVMModuleRef mod;        /* the part's kernels, linked */
    LLVMModuleRef *pending;   /* kernels' modules to link into mod (on the part's thread) */
    int n_pending, cap_pending;
    LLVMBuilderRef b;
    size_t work;              /* IR text bytes linked in: a cost estimate */
    int n_kernels;
    char first[64];           /* first kernel's name (for the profile) */
    /* compile_part */
    const char *cpu, *features;
    int dump;                 /* keep the optimised IR in ir */
    LLVMMemoryBufferRef object;
    char *ir;
    gr_status st;
    double optimise_ms, machine_ms; /* CPU time of its thread */
} part;

typedef struct {
    uint64_t hash;
    char *text;               /* the kernel's module, canonically named */
    char *name;               /* its entry point */
} kernel_key;

typedef struct {
    cg_module m;              /* m.mod: the kernel being emitted */
    part *parts;
    int n_parts, n_used, current;
    int reuse, profile;
    kernel_key *keys;
    int n_keys, cap_keys;
    int n_functions, n_reused;
    const char *prefix;       /* of kernel names ("graft_") */
    LLVMContextRef shared_ctx; /* borrowed: every part's context (objects) */
} jit_build;

/* LLVM's remarks ("loop not vectorized") are for compiler developers, not
 * users: errors surface through return codes, everything else is dropped. */
static void ignore_diagnostic(LLVMDiagnosticInfoRef info, void *ctx) {
    (void)info;
    (void)ctx;
}

static void use_part(cg_module *m, part *p) {
    m->ctx = p->ctx;
    m->b = p->b;
    m->t_void = LLVMVoidTypeInContext(m->ctx);
    m->t_i1 = LLVMInt1TypeInContext(m->ctx);
    m->t_i8 = LLVMInt8TypeInContext(m->ctx);
    m->t_i16 = LLVMInt16TypeInContext(m->ctx);
    m->t_i32 = LLVMInt32TypeInContext(m->ctx);
    m->t_i64 = LLVMInt64TypeInContext(m->ctx);
    m->t_f32 = LLVMFloatTypeInContext(m->ctx);
    m->t_f64 = LLVMDoubleTypeInContext(m->ctx);
    m->t_ptr = LLVMPointerTypeInContext(m->ctx, 0);
}

static int env_int(const char *name, int fallback) {
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : fallback;
}

/* For the host CPU (cpu NULL) or the given cpu and features; shared_ctx
 * NULL: one part per core, each with its own context, else one part in
 * shared_ctx. */
static gr_code build_init(jit_build *jb, const gr_graph *g, int max_kernels, const char *cpu,
                          const char *features, LLVMContextRef shared_ctx, gr_status *st) {
    memset(jb, 0, sizeof *jb);
    jb->m.g = g;
    jb->m.cpu = cpu ? LLVMCreateMessage(cpu) : LLVMGetHostCPUName();
    jb->m.features = cpu ? LLVMCreateMessage(features) : LLVMGetHostCPUFeatures();
    jb->reuse = getenv("GRAFT_NO_KERNEL_REUSE") == NULL;
    jb->profile = getenv("GRAFT_COMPILE_PROFILE") != NULL && !shared_ctx;
    jb->prefix = "graft_";
    jb->shared_ctx = shared_ctx;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int n = env_int("GRAFT_COMPILE_THREADS", cores > 0 ? (int)cores : 1);
    if (n > 16) n = 16;
    if (jb->profile) n = max_kernels;
    if (shared_ctx) n = 1;
    jb->parts = gr_calloc((size_t)n, sizeof *jb->parts);
    if (!jb->parts) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    jb->n_parts = n;
    return GR_OK;
}

static gr_code part_open(jit_build *jb, part *p, gr_status *st) {
    if (p->ctx) return GR_OK;
    p->ctx = jb->shared_ctx ? jb->shared_ctx : LLVMContextCreate();
    LLVMContextSetDiagnosticHandler(p->ctx, ignore_diagnostic, NULL);
    p->mod = LLVMModuleCreateWithNameInContext("graft", p->ctx);
    p->b = LLVMCreateBuilderInContext(p->ctx);
    p->cpu = jb->m.cpu;
    p->features = jb->m.features;
    if (!p->ctx || !p->mod || !p->b) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    jb->n_used++;
    return GR_OK;
}

static void build_dispose(jit_build *jb) {
    if (jb->m.mod) LLVMDisposeModule(jb->m.mod);
    for (int i = 0; i < jb->n_parts && jb->parts; i++) {
        part *p = &jb->parts[i];
        if (p->object) LLVMDisposeMemoryBuffer(p->object);
        if (p->ir) LLVMDisposeMessage(p->ir);
        if (p->mod) LLVMDisposeModule(p->mod);
        for (int j = 0; j < p->n_pending; j++) LLVMDisposeModule(p->pending[j]);
        gr_free(p->pending);
        if (p->b) LLVMDisposeBuilder(p->b);
        if (p->ctx && p->ctx != jb->shared_ctx) LLVMContextDispose(p->ctx);
    }
    gr_free(jb->parts);
    for (int i = 0; i < jb->n_keys; i++) {
        LLVMDisposeMessage(jb->keys[i].text);
        gr_free(jb->keys[i].name);
    }
    gr_free(jb->keys);
    if (jb->m.cpu) LLVMDisposeMessage(jb->m.cpu);
    if (jb->m.features) LLVMDisposeMessage(jb->m.features);
}

/* Opens a module for the next kernel, in the part with the least work
 * (a new part per kernel when profiling). */
static gr_code kernel_start(jit_build *jb, gr_status *st) {
    int best = 0;
    if (jb->profile) {
        best = jb->n_used < jb->n_parts ? jb->n_used : jb->n_parts - 1;
    } else {
        for (int i = 1; i < jb->n_parts; i++)
            if (jb->parts[i].work < jb->parts[best].work) best = i;
    }
    part *p = &jb->parts[best];
    GR_TRY(part_open(jb, p, st));
    jb->current = best;
    use_part(&jb->m, p);
    jb->m.mod = LLVMModuleCreateWithNameInContext("graft.kernel", p->ctx);
    return jb->m.mod ? GR_OK : gr_fail(st, GR_ERR_NOMEM, "out of memory");
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The kernel's whole module as text, with its two functions renamed to
 * fixed names while printing: it says everything about the code (globals
 * and their tables, declarations, attributes, metadata). */
static char *kernel_text(LLVMModuleRef mod, const cg_kernel *k) {
    char body_name[512];
    snprintf(body_name, sizeof body_name, "%s.body", k->name);
    LLVMValueRef entry = LLVMGetNamedFunction(mod, k->name);
    LLVMValueRef body = LLVMGetNamedFunction(mod, body_name);
    if (!entry || !body) return NULL;
    LLVMSetValueName2(entry, "graft.entry", 11);
    LLVMSetValueName2(body, "graft.body", 10);
    char *text = LLVMPrintModuleToString(mod);
    LLVMSetValueName2(entry, k->name, strlen(k->name)); /* the names are free again */
    LLVMSetValueName2(body, body_name, strlen(body_name));
    return text;
}

static void remember(jit_build *jb, const char *name, char *text, uint64_t hash) {
    if (jb->n_keys >= jb->cap_keys) {
        int cap = jb->cap_keys ? 2 * jb->cap_keys : 64;
        kernel_key *keys = gr_realloc(jb->keys, sizeof *keys * (size_t)cap);
        if (!keys) { /* out of memory: the kernel is never reused */
            LLVMDisposeMessage(text);
            return;
        }
        jb->keys = keys;
        jb->cap_keys = cap;
    }
    size_t len = strlen(name);
    kernel_key *e = &jb->keys[jb->n_keys];
    if (!(e->name = gr_malloc(len + 1))) {
        LLVMDisposeMessage(text);
        return;
    }
    memcpy(e->name, name, len + 1);
    e->hash = hash;
    e->text = text;
    jb->n_keys++;
}

/* Ends the kernel k just emitted: reuses an identical earlier kernel
 * (k->name becomes its entry point, owned by jb) or queues the kernel's
 * module to be linked into its part (by compile_part). */
static gr_code kernel_finish(jit_build *jb, cg_kernel *k, gr_status *st) {
    LLVMModuleRef mod = jb->m.mod;
    jb->m.mod = NULL;
    part *p = &jb->parts[jb->current];
    char *text = kernel_text(mod, k);
    uint64_t hash = text ? fnv1a(text) : 0;
    for (int i = 0; text && jb->reuse && i < jb->n_keys; i++) {
        const kernel_key *e = &jb->keys[i];
        if (e->hash != hash || strcmp(e->text, text)) continue;
        k->name = e->name;
        LLVMDisposeMessage(text);
        LLVMDisposeModule(mod);
        jb->n_reused++;
        return GR_OK;
    }
    if (p->n_pending >= p->cap_pending) {
        int cap = p->cap_pending ? 2 * p->cap_pending : 16;
        LLVMModuleRef *pending = gr_realloc(p->pending, sizeof *pending * (size_t)cap);
        if (!pending) {
            if (text) LLVMDisposeMessage(text);
            LLVMDisposeModule(mod);
            return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        }
        p->pending = pending;
        p->cap_pending = cap;
    }
    p->pending[p->n_pending++] = mod;
    p->work += text ? strlen(text) : 4096;
    if (!p->n_kernels++) snprintf(p->first, sizeof p->first, "%s", k->name);
    jb->n_functions++;
    if (text) remember(jb, k->name, text, hash);
    return GR_OK;
}

static void symbol_name(char *buf, size_t size, const char *prefix, int index,
                        const char *what) {
    int w = snprintf(buf, size, "%sk%d_", prefix, index);
    for (const char *c = what; *c && w + 1 < (int)size; c++, w++)
        buf[w] = ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9')) ? *c : '_';
    buf[w < (int)size ? w : (int)size - 1] = '\0';
}

static gr_code add_step(gr_plan *p, const layout *lay, const cg_kernel *k, gr_status *st) {
    gr_step *s = &p->steps[p->n_steps];
    s->name = gr_arena_strdup(p->arena, k->name);
    s->args = gr_arena_alloc(p->arena, sizeof(int) * (size_t)(k->n_args + 1));
    if (!s->name || !s->args) return gr_fail(st, GR_ERR_NOMEM, "out of memory building the plan");
    s->n_args = k->n_args;
    for (int i = 0; i < k->n_args; i++) s->args[i] = lay->buffer_of[k->arg_values[i]->id];
    s->n_tasks = k->n_tasks;
    s->workspace_bytes = (k->workspace_bytes + 63) & ~(size_t)63;
    p->n_steps++;
    return GR_OK;
}

static gr_code emit_group(jit_build *jb, const gr_graph *g, layout *lay, int root,
                          gr_status *st) {
    const gr_node *members[CG_MAX_GROUP];
    int count = 0;
    for (int j = lay->first_member[root]; j >= 0 && count < CG_MAX_GROUP; j = lay->next_member[j])
        members[count++] = g->nodes[j];
    char name[128];
    symbol_name(name, sizeof name, jb->prefix, lay->plan->n_steps, "fused");
    cg_kernel k;
    GR_TRY(kernel_start(jb, st));
    if (cg_emit_group(&jb->m, members, count, name, &k, st) != GR_OK)
        return gr_status_prefix(st, "fused group ending at node '%s': ", g->nodes[root]->name);
    GR_TRY(kernel_finish(jb, &k, st));
    return add_step(lay->plan, lay, &k, st);
}

static gr_code emit_nodes(jit_build *jb, const gr_graph *g, layout *lay, gr_status *st) {
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (lay->root_of[i] != i) continue;        /* emitted with its group */
        if (lay->first_member[i] != i) {           /* root of a group */
            GR_TRY(emit_group(jb, g, lay, i, st));
            continue;
        }
        if (is_view(g, lay, i)) continue;          /* its input's buffer: no kernel */
        cg_emit_fn emit = cg_emitter(n->op);
        if (!emit)
            return gr_fail(st, GR_ERR_UNSUPPORTED, "node '%s' (%s): no kernel for this op yet",
                           n->name, n->op_type);
        char name[128];
        symbol_name(name, sizeof name, jb->prefix, lay->plan->n_steps, n->op_type);
        cg_kernel k;
        GR_TRY(kernel_start(jb, st));
        if (emit(&jb->m, n, name, &k, st) != GR_OK)
            return gr_status_prefix(st, "node '%s' (%s): ", n->name, n->op_type);
        GR_TRY(kernel_finish(jb, &k, st));
        GR_TRY(add_step(lay->plan, lay, &k, st));
    }
    return GR_OK;
}

/* Graph outputs that no node writes directly (inputs, constants, or a value
 * listed twice) are copied into place. */
static gr_code emit_copy(jit_build *jb, gr_plan *p, const gr_value *v, int src, int dst,
                         gr_status *st) {
    char name[128];
    symbol_name(name, sizeof name, jb->prefix, p->n_steps, "copy");
    cg_kernel k;
    GR_TRY(kernel_start(jb, st));
    GR_TRY(cg_emit_copy_buffers(&jb->m, name, v, &k, st));
    GR_TRY(kernel_finish(jb, &k, st));
    gr_step *s = &p->steps[p->n_steps];
    s->name = gr_arena_strdup(p->arena, k.name);
    s->args = gr_arena_alloc(p->arena, sizeof(int) * 2);
    if (!s->name || !s->args) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    s->n_args = 2;
    s->args[0] = src;
    s->args[1] = dst;
    s->n_tasks = k.n_tasks;
    p->n_steps++;
    return GR_OK;
}

/* Updates not computed in place (see place_updates): next -> state. They
 * run after the output copies, which may read a state's old value. */
static gr_code emit_update_copies(jit_build *jb, const gr_graph *g, layout *lay, gr_status *st) {
    for (int i = 0; i < g->n_updates; i++) {
        const gr_update *u = &g->updates[i];
        int src = lay->buffer_of[u->next->id], dst = lay->buffer_of[u->state->id];
        if (src != dst) GR_TRY(emit_copy(jb, lay->plan, u->next, src, dst, st));
    }
    return GR_OK;
}

static gr_code emit_output_copies(jit_build *jb, const gr_graph *g, layout *lay, gr_status *st) {
    gr_plan *p = lay->plan;
    for (int i = 0; i < g->n_outputs; i++) {
        const gr_value *v = g->outputs[i];
        int src = lay->buffer_of[v->id];
        if (src == p->outputs[i]) continue;
        GR_TRY(emit_copy(jb, p, v, src, p->outputs[i], st));
    }
    return GR_OK;
}

static gr_code check_graph(const gr_graph *g, gr_status *st) {
    GR_TRY(gr_graph_check_supported(g, st));
    for (int i = 0; i < g->n_values; i++) {
        const gr_value *v = g->values[i];
        if (!gr_shape_is_static(&v->shape) || v->dtype == GR_DTYPE_UNDEFINED) {
            char buf[256];
            return gr_fail(st, GR_ERR_BAD_ARG,
                           "value '%s' has shape %s%s: compiling needs static shapes "
                           "(use --batch N or --shape NAME=DIMS)",
                           v->name, gr_dtype_name(v->dtype), gr_shape_str(&v->shape, buf, sizeof buf));
        }
    }
    return GR_OK;
}

/* --- compiling the parts --- */

/* Links the part's kernel modules into p->mod, pairwise in rounds: a link
 * costs time in proportion to its destination too, so linking them one by
 * one into one module would take quadratic time. */
static gr_code link_pending(part *p) {
    int n = p->n_pending, failed = 0;
    while (n > 1 && !failed) {
        int w = 0;
        for (int i = 0; i < n; i++) {
            if (!failed && i + 1 < n) {
                failed = LLVMLinkModules2(p->pending[i], p->pending[i + 1]); /* consumes the source */
                p->pending[i + 1] = NULL;
            }
            p->pending[w++] = p->pending[i];
            if (i + 1 < n && !p->pending[i + 1]) i++;
        }
        n = w;
    }
    if (!failed && n == 1) {
        failed = LLVMLinkModules2(p->mod, p->pending[0]);
        p->pending[0] = NULL;
        n = 0;
    }
    for (int i = 0; i < n; i++)
        if (p->pending[i]) LLVMDisposeModule(p->pending[i]);
    p->n_pending = 0;
    return failed ? gr_fail(&p->st, GR_ERR_INTERNAL, "linking the kernels' LLVM modules failed")
                  : GR_OK;
}

gr_code cg_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, gr_status *st) {
    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
        gr_fail(st, GR_ERR_INTERNAL, "generated LLVM IR is invalid: %.1500s", msg);
        LLVMDisposeMessage(msg);
        return GR_ERR_INTERNAL;
    }
    LLVMDisposeMessage(msg);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(mod, "default<O3>", tm, po);
    LLVMDisposePassBuilderOptions(po);
    return e ? llvm_error(st, e, "LLVM optimisation") : GR_OK;
}

/* Links a part's kernels into one module, verifies it, runs O3 and emits
 * its object, as LLJIT's own compiler would (same target machine). Runs
 * on a thread of its own: it touches only the part (its own LLVM context)
 * and uses no graft allocator. */
static void *compile_part(void *arg) {
    part *p = arg;
    double t0 = cpu_ms();
    char *msg = NULL;
    if (link_pending(p) != GR_OK) return NULL;
    LLVMTargetMachineRef tm;
    if (cg_target_machine(p->cpu, p->features, 0, &tm, &p->st) != GR_OK) return NULL;
    if (cg_optimise(p->mod, tm, &p->st) != GR_OK) {
        LLVMDisposeTargetMachine(tm);
        return NULL;
    }
    if (p->dump) p->ir = LLVMPrintModuleToString(p->mod);
    double t1 = cpu_ms();
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, p->mod, LLVMObjectFile, &msg, &p->object)) {
        gr_fail(&p->st, GR_ERR_INTERNAL, "LLVM code generation: %s", msg);
        LLVMDisposeMessage(msg);
        p->object = NULL;
    }
    LLVMDisposeTargetMachine(tm);
    p->optimise_ms = t1 - t0;
    p->machine_ms = cpu_ms() - t1;
    return NULL;
}

/* Compiles the parts in parallel (the first on this thread). */
static gr_code compile_parts(jit_build *jb, const gr_codegen_opts *opts, gr_status *st) {
    pthread_t threads[16];
    int started[16] = {0};
    for (int i = 0; i < jb->n_parts; i++) {
        part *p = &jb->parts[i];
        p->dump = opts && opts->dump_ir;
        if (i == 0 || !p->n_kernels || jb->profile || i >= 16) continue;
        started[i] = pthread_create(&threads[i], NULL, compile_part, p) == 0;
    }
    for (int i = 0; i < jb->n_parts; i++)
        if (jb->parts[i].n_kernels && !(i < 16 && started[i])) compile_part(&jb->parts[i]);
    for (int i = 0; i < jb->n_parts && i < 16; i++)
        if (started[i]) pthread_join(threads[i], NULL);
    for (int i = 0; i < jb->n_parts; i++) {
        part *p = &jb->parts[i];
        if (!p->n_kernels) continue;
        if (p->st.code != GR_OK) {
            *st = p->st;
            return st->code;
        }
        if (p->ir) fputs(p->ir, opts->dump_ir);
        if (jb->profile)
            fprintf(stderr, "graft: compile %-40s optimise %8.2f ms, machine code %8.2f ms\n",
                    p->first, p->optimise_ms, p->machine_ms);
    }
    return GR_OK;
}

static gr_code make_jit(const char *cpu, const char *features, jit_owner *o, gr_status *st) {
    LLVMTargetMachineRef tm;
    GR_TRY(cg_target_machine(cpu, features, 0, &tm, st));
    LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
        jb, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&o->jit, jb);
    if (e) return llvm_error(st, e, "creating the JIT");
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(o->jit);
    LLVMOrcDefinitionGeneratorRef gen;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
        &gen, LLVMOrcLLJITGetGlobalPrefix(o->jit), NULL, NULL);
    if (e) return llvm_error(st, e, "JIT symbol generator");
    LLVMOrcJITDylibAddGenerator(jd, gen);
    o->rt = LLVMOrcJITDylibCreateResourceTracker(jd);
    return GR_OK;
}

/* Adds every part's object to one JIT and resolves the steps. */
static gr_code link_kernels(jit_build *jb, gr_plan *p, jit_owner *o, gr_status *st) {
    GR_TRY(make_jit(jb->m.cpu, jb->m.features, o, st));
    for (int i = 0; i < jb->n_parts; i++) {
        part *q = &jb->parts[i];
        if (!q->object) continue;
        LLVMErrorRef e = LLVMOrcLLJITAddObjectFileWithRT(o->jit, o->rt, q->object);
        q->object = NULL; /* owned by the JIT now */
        if (e) return llvm_error(st, e, "adding kernels to the JIT");
    }
    for (int i = 0; i < p->n_steps; i++) {
        LLVMOrcExecutorAddress addr = 0;
        LLVMErrorRef e = LLVMOrcLLJITLookup(o->jit, &addr, p->steps[i].name);
        if (e) return llvm_error(st, e, "JIT lookup");
        p->steps[i].fn = (gr_kernel_fn)(uintptr_t)addr;
    }
    return GR_OK;
}

static void free_layout(layout *lay) {
    gr_free(lay->buffer_of);
    gr_free(lay->root_of);
    gr_free(lay->first_member);
    gr_free(lay->next_member);
    gr_free(lay->in_place);
}

static int max_steps(const gr_graph *g) { return g->n_nodes + g->n_outputs + g->n_updates + 1; }

static gr_plan *plan_new(const gr_graph *g) {
    gr_plan *p = gr_calloc(1, sizeof *p);
    if (!p || !(p->arena = gr_arena_new())) {
        gr_free(p);
        return NULL;
    }
    p->buffers = gr_arena_alloc(p->arena, sizeof(gr_buffer) * (size_t)(g->n_values + g->n_outputs + 1));
    p->steps = gr_arena_alloc(p->arena, sizeof(gr_step) * (size_t)max_steps(g));
    p->inputs = gr_arena_alloc(p->arena, sizeof(int) * (size_t)(g->n_inputs + 1));
    p->outputs = gr_arena_alloc(p->arena, sizeof(int) * (size_t)(g->n_outputs + 1));
    if (!p->buffers || !p->steps || !p->inputs || !p->outputs) {
        gr_plan_free(p);
        return NULL;
    }
    return p;
}

/* Layout and kernels of g into jb's parts (the part modules still to be
 * linked): the half of compiling that the JIT and objects share. */
static gr_code build_plan(jit_build *jb, const gr_graph *g, gr_plan **out, gr_status *st) {
    *out = NULL;
    gr_plan *p = plan_new(g);
    size_t nn = (size_t)g->n_nodes + 1;
    layout lay = {p, gr_calloc((size_t)g->n_values + 1, sizeof(int)), gr_calloc(nn, sizeof(int)),
                  gr_calloc(nn, sizeof(int)), gr_calloc(nn, sizeof(int)),
                  gr_calloc((size_t)g->n_values + 1, sizeof(gr_value *))};
    gr_code rc = GR_OK;
    if (!p || !lay.buffer_of || !lay.root_of || !lay.first_member || !lay.next_member ||
        !lay.in_place)
        rc = gr_fail(st, GR_ERR_NOMEM, "out of memory building the plan");
    if (rc == GR_OK) rc = plan_groups(g, &lay, st);
    if (rc == GR_OK) rc = assign_buffers(g, &lay, st);
    jb->m.claim_const = claim_const;
    jb->m.claim_ctx = &lay;
    jb->m.in_place = lay.in_place;
    if (rc == GR_OK) rc = emit_nodes(jb, g, &lay, st);
    jb->m.claim_const = NULL;
    if (rc == GR_OK) rc = emit_output_copies(jb, g, &lay, st);
    if (rc == GR_OK) rc = emit_update_copies(jb, g, &lay, st);
    jb->m.in_place = NULL;
    free_layout(&lay);
    if (rc != GR_OK) {
        gr_plan_free(p);
        return rc;
    }
    *out = p;
    return GR_OK;
}

gr_code cg_build_module(const gr_graph *g, const char *cpu, const char *features,
                        const char *prefix, LLVMContextRef ctx, gr_plan **plan,
                        LLVMModuleRef *mod, gr_status *st) {
    *plan = NULL;
    *mod = NULL;
    GR_TRY(check_graph(g, st));
    jit_build jb;
    gr_code rc = build_init(&jb, g, max_steps(g), cpu, features, ctx, st);
    jb.prefix = prefix;
    if (rc == GR_OK) rc = build_plan(&jb, g, plan, st);
    part *p = jb.parts;
    if (rc == GR_OK && p->ctx && (rc = link_pending(p)) != GR_OK) *st = p->st;
    if (rc == GR_OK && !p->mod) rc = gr_fail(st, GR_ERR_INTERNAL, "no kernels were emitted");
    if (rc == GR_OK) {
        *mod = p->mod;
        p->mod = NULL; /* the caller's now */
    } else {
        gr_plan_free(*plan);
        *plan = NULL;
    }
    build_dispose(&jb);
    return rc;
}

gr_code gr_codegen_jit(const gr_graph *g, const gr_codegen_opts *opts, gr_plan **out,
                       gr_status *st) {
    *out = NULL;
    GR_TRY(check_graph(g, st));
    double t0 = now_ms();
    cg_init_llvm();
    gr_plan *p = NULL;
    jit_owner *o = gr_calloc(1, sizeof *o);
    jit_build jb;
    gr_code rc = build_init(&jb, g, max_steps(g), NULL, NULL, NULL, st);
    if (rc == GR_OK && !o) rc = gr_fail(st, GR_ERR_NOMEM, "out of memory");
    if (rc == GR_OK) rc = build_plan(&jb, g, &p, st);
    double t_emit = now_ms();
    if (rc == GR_OK) rc = compile_parts(&jb, opts, st);
    double t_compile = now_ms();
    if (rc == GR_OK) rc = link_kernels(&jb, p, o, st);
    int n_functions = jb.n_functions, n_parts = jb.n_used;
    double cpu_opt = 0, cpu_mc = 0, cpu_max = 0;
    for (int i = 0; i < jb.n_parts && jb.parts; i++) {
        part *q = &jb.parts[i];
        cpu_opt += q->optimise_ms;
        cpu_mc += q->machine_ms;
        if (q->optimise_ms + q->machine_ms > cpu_max) cpu_max = q->optimise_ms + q->machine_ms;
    }
    build_dispose(&jb);
    if (rc != GR_OK || !p) {
        release_jit(o);
        gr_plan_free(p);
        return rc;
    }
    p->owner = o;
    p->release = release_jit;
    p->compile_ms = now_ms() - t0;
    if ((opts && opts->verbose) || getenv("GRAFT_CODEGEN_VERBOSE"))
        fprintf(stderr, "graft: compiled %d kernels (%d functions) in %.1f ms: emit %.1f, "
                "optimise and machine code %.1f on %d threads (CPU: optimise %.1f, machine "
                "code %.1f, busiest thread %.1f), link %.1f (arena %zu bytes, %zu without "
                "in-place; weights %zu bytes)\n", p->n_steps, n_functions, p->compile_ms,
                t_emit - t0, t_compile - t_emit, n_parts, cpu_opt, cpu_mc, cpu_max,
                now_ms() - t_compile, p->arena_bytes, p->arena_separate, p->const_bytes);
    *out = p;
    return GR_OK;
}
