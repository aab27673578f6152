/* The cleanup pass: removes Identity and inference-mode Dropout, folds
 * constants, removes dead nodes and unused or duplicate initializers. Graph
 * inputs and outputs keep their names; in a model of IR version < 4 the
 * initializers listed among the inputs stop being inputs (see below). */
#include <stdlib.h>
#include <string.h>

#include "fold_constants.h"
#include "pass_util.h"
#include "strmap.h"

/* ---- IR < 4: initializers listed as graph inputs ---- */

/* Before IR version 4 every initializer had to be a graph input as well;
 * runtimes take such inputs as constants (onnxruntime lets a caller override
 * an initializer only from IR 4 on). Taking them out of the inputs, with the
 * IR version raised to 4, lets the passes see the weights as constants; the
 * inputs a caller feeds are the same before and after. */
static void untie_init_inputs(oq_model *m, oq_pass_report *r)
{
    if (m->ir_version >= 4)
        return;
    oq_graph *g = m->graph;
    size_t j = 0;
    for (size_t i = 0; i < g->n_inputs; i++) {
        if (pu_init(g, g->inputs[i].name, NULL)) {
            oq_value_info_clear(&g->inputs[i]);
            r->inputs_untied++;
        } else {
            g->inputs[j++] = g->inputs[i];
        }
    }
    g->n_inputs = j;
    m->ir_version = 4;
}

/* ---- Identity and Dropout ---- */

/* True for a node that passes input 0 through unchanged as output 0. */
static bool is_passthrough(const oq_model *m, const oq_node *n)
{
    if (!oq_domain_is_onnx(n->domain) || n->n_inputs < 1 || !*n->inputs[0])
        return false;
    if (strcmp(n->op_type, "Identity") == 0)
        return n->n_outputs == 1;
    if (strcmp(n->op_type, "Dropout") != 0)
        return false;
    /* The mask output must be unused, and (opset 12+) training_mode absent
     * or a constant false. */
    if (n->n_outputs > 1 && *n->outputs[1] && pu_count_uses(m->graph, n->outputs[1]))
        return false;
    if (n->n_inputs > 2 && *n->inputs[2]) {
        const oq_tensor *t = pu_init(m->graph, n->inputs[2], NULL);
        if (!t || t->dtype != OQ_BOOL || t->count != 1 || ((const uint8_t *)t->data)[0])
            return false;
    }
    return true;
}

static bool defined_outside_nodes(const oq_graph *g, const char *name)
{
    return pu_is_graph_input(g, name) || pu_init(g, name, NULL) || pu_is_graph_output(g, name);
}

/* Removes one pass-through node; returns false when it must stay (its
 * output is a graph output that cannot take over the input's name). */
static oq_status bypass(oq_graph *g, size_t i, bool *removed)
{
    oq_node *n = g->nodes[i];
    const char *in = n->inputs[0], *out = n->outputs[0];
    *removed = false;
    if (!pu_is_graph_output(g, out)) {
        oq_status st = pu_rename_uses(g, out, in);
        *removed = st == OQ_OK;
        return st;
    }
    /* The output name must survive: the producer of the input takes it. */
    long p = pu_producer(g, in);
    if (p < 0 || defined_outside_nodes(g, in))
        return OQ_OK;
    oq_node *prod = g->nodes[p];
    char *in_name = strdup(in);
    if (!in_name)
        return oq_error(OQ_E_NOMEM, "out of memory");
    oq_status st = pu_rename_uses(g, in_name, out);
    for (size_t k = 0; st == OQ_OK && k < prod->n_outputs; k++) {
        if (strcmp(prod->outputs[k], in_name) != 0)
            continue;
        char *c = strdup(out);
        if (!c) {
            st = oq_error(OQ_E_NOMEM, "out of memory");
            break;
        }
        free(prod->outputs[k]);
        prod->outputs[k] = c;
    }
    free(in_name);
    *removed = st == OQ_OK;
    return st;
}

static oq_status remove_passthrough(oq_model *m, oq_pass_report *r)
{
    oq_graph *g = m->graph;
    bool *rm = calloc(g->n_nodes + 1, sizeof *rm);
    if (!rm)
        return oq_error(OQ_E_NOMEM, "out of memory");
    oq_status st = OQ_OK;
    for (size_t i = 0; i < g->n_nodes && st == OQ_OK; i++)
        if (is_passthrough(m, g->nodes[i]))
            st = bypass(g, i, &rm[i]);
    r->nodes_removed += pu_remove_nodes(g, rm);
    free(rm);
    return st;
}

/* ---- dead nodes and initializers ---- */

/* Removes nodes none of whose outputs is read (by a node, a subgraph or
 * as a graph output), until none is left. */
static oq_status remove_dead_nodes(oq_graph *g, oq_pass_report *r)
{
    for (;;) {
        bool *rm = calloc(g->n_nodes + 1, sizeof *rm);
        if (!rm)
            return oq_error(OQ_E_NOMEM, "out of memory");
        bool any = false;
        for (size_t k = 0; k < g->n_nodes; k++) {
            const oq_node *n = g->nodes[k];
            bool used = false;
            for (size_t j = 0; j < n->n_outputs && !used; j++)
                used = *n->outputs[j] && pu_count_uses(g, n->outputs[j]) > 0;
            rm[k] = !used;
            any |= !used;
        }
        r->nodes_removed += pu_remove_nodes(g, rm);
        free(rm);
        if (!any)
            return OQ_OK;
    }
}

/* Initializers with the same dtype, shape and bytes: readers of the later
 * ones read the first instead. Graph inputs and outputs are left alone. */
static oq_status merge_duplicate_inits(oq_graph *g, oq_pass_report *r)
{
    bool *rm = calloc(g->n_inits + 1, sizeof *rm);
    if (!rm)
        return oq_error(OQ_E_NOMEM, "out of memory");
    oq_status st = OQ_OK;
    for (size_t i = 0; i < g->n_inits && st == OQ_OK; i++) {
        const oq_tensor *a = g->inits[i];
        if (rm[i] || pu_is_graph_input(g, oq_str(a->name)) || pu_is_graph_output(g, oq_str(a->name)))
            continue;
        for (size_t j = i + 1; j < g->n_inits && st == OQ_OK; j++) {
            const oq_tensor *b = g->inits[j];
            if (rm[j] || !oq_tensor_same_value(a, b) || pu_is_graph_input(g, oq_str(b->name)) ||
                pu_is_graph_output(g, oq_str(b->name)))
                continue;
            st = pu_rename_uses(g, oq_str(b->name), oq_str(a->name));
            rm[j] = st == OQ_OK;
        }
    }
    r->inits_removed += pu_remove_inits(g, rm);
    free(rm);
    return st;
}

oq_status oq_pass_cleanup(oq_model *m, oq_pass_report *r)
{
    pu_report_init(r, "cleanup");
    untie_init_inputs(m, r);
    oq_status st = oq_graph_toposort(m->graph);
    if (st == OQ_OK)
        st = remove_passthrough(m, r);
    if (st == OQ_OK)
        st = oq_fold_constants(m, r);
    if (st == OQ_OK)
        st = remove_dead_nodes(m->graph, r);
    if (st == OQ_OK)
        st = merge_duplicate_inits(m->graph, r);
    if (st == OQ_OK)
        st = pu_remove_unused_inits(m->graph, &r->inits_removed);
    return st;
}
