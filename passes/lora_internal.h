/* lora_internal.h: what the LoRA files of passes/ share (lora.c inserts
 * adapters, lora_merge.c folds them back, lora_spec.c parses and describes
 * them): how a node uses a weight, and how an inserted adapter is found
 * again in a graph. */
#ifndef GR_LORA_INTERNAL_H
#define GR_LORA_INTERNAL_H

#include "passes/passes_internal.h"

/* The three forms ARCHITECTURE.md "Adapter naming" defines. */
typedef enum {
    LORA_XWT,  /* x·Wᵀ: Gemm transB=1, MatMul of Transpose(W); W [out, in],
                  A [r, in], B [out, r] */
    LORA_XW,   /* x·W: MatMul, Gemm transB=0; W [in, out], A [in, r], B [r, out] */
    LORA_CONV, /* Conv: W [out, in, k...], A [r, in, k...], B [out, r, 1...] */
} lora_form;

/* A node that uses a weight parameter in one of those forms. */
typedef struct {
    gr_node *node;  /* the Gemm, MatMul or Conv */
    gr_value *w;    /* the PARAM weight */
    lora_form form;
    int64_t in, out; /* W's input and output features (Conv: channels) */
} lora_use;

/* 1 and *u filled if n is a live Gemm or MatMul with a 2-D float PARAM as
 * its second operand (directly, or through a 2-D Transpose), or a Conv
 * with a float PARAM kernel of rank >= 3; else 0. Grouped convolutions
 * count too (the caller rejects them). */
int lora_find_use(const gr_node *n, lora_use *u);

/* An inserted adapter: the Add that adds its scaled output to the base
 * node's output. */
typedef struct {
    gr_node *add;       /* Add(base output, Mul(delta, scale)) */
    lora_use use;       /* the base node and its weight */
    gr_value *a, *b;    /* W.lora_A, W.lora_B */
    double scale;       /* alpha / r */
    int64_t rank;
} lora_adapter;

/* 1 and *out filled if n is the Add of an adapter the "lora" pass built
 * (its second input is Mul(delta, CONST W.lora_scale), its first the base
 * node's output, and W.lora_A / W.lora_B exist), else 0. */
int lora_find_adapter(const gr_graph *g, gr_node *n, lora_adapter *out);

#endif /* GR_LORA_INTERNAL_H */
