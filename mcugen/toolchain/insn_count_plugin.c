/* QEMU TCG plugin: the exact number of guest instructions executed by one call of a function.
 *
 * Arguments: entry=<address of the function>, out=<file>, and optionally mark=<address of a marker
 * function called inside it>. Built by mcugen/toolchain/qemu.py with the host gcc; works for
 * qemu-system-arm and qemu-system-riscv32 alike.
 *
 * Every instruction adds 1 to a counter, inline (no callback). A callback at the start of every
 * translation block notes where that block ends. A block ends at a call, so when the block at
 * `entry` starts, the previous block ended with the call and its end is the return address. The
 * count runs from there until the block at that return address starts, so it covers exactly the
 * first call, every instruction of the function and its callees up to and including its return.
 * Each entry to `mark` inside the call records the count so far. At exit the plugin writes
 * "insns N" and one "mark N" line per mark to the out file, or nothing if the call never returned.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The few declarations needed from QEMU 7.2's include/qemu/qemu-plugin.h (Debian ships no header). */
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = 1;

struct block {
    uint64_t start, end; /* guest addresses of its first instruction and just past its last */
};

static uint64_t entry, mark = UINT64_MAX, ret_site, last_end, count, base, total;
static enum { BEFORE, INSIDE, DONE } state = BEFORE;
static uint64_t *marks;
static size_t n_marks, cap_marks;
static const char *out_path;

static void record_mark(void)
{
    if (n_marks == cap_marks) {
        cap_marks = cap_marks ? 2 * cap_marks : 64;
        marks = realloc(marks, cap_marks * sizeof *marks);
        if (!marks)
            abort();
    }
    marks[n_marks++] = count - base;
}

/* Runs before the block's first instruction is counted. */
static void block_start(unsigned int vcpu, void *userdata)
{
    const struct block *b = userdata;
    (void)vcpu;
    if (state == BEFORE && b->start == entry) {
        ret_site = last_end;
        base = count;
        state = INSIDE;
    } else if (state == INSIDE && b->start == ret_site) {
        total = count - base;
        state = DONE;
    }
    if (state == INSIDE && b->start == mark)
        record_mark();
    last_end = b->end;
}

static void translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    struct qemu_plugin_insn *last = qemu_plugin_tb_get_insn(tb, n - 1);
    struct block *b = malloc(sizeof *b); /* lives as long as the translated block may run */
    (void)id;
    if (!b)
        abort();
    b->start = qemu_plugin_tb_vaddr(tb);
    b->end = qemu_plugin_insn_vaddr(last) + qemu_plugin_insn_size(last);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, block_start, QEMU_PLUGIN_CB_NO_REGS, b);
    for (size_t i = 0; i < n; i++)
        qemu_plugin_register_vcpu_insn_exec_inline(qemu_plugin_tb_get_insn(tb, i), QEMU_PLUGIN_INLINE_ADD_U64,
                                                   &count, 1);
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id, (void)userdata;
    if (state != DONE)
        return;
    FILE *f = fopen(out_path, "w");
    if (!f)
        return;
    fprintf(f, "insns %llu\n", (unsigned long long)total);
    for (size_t i = 0; i < n_marks; i++)
        fprintf(f, "mark %llu\n", (unsigned long long)marks[i]);
    fclose(f);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "entry=", 6) == 0)
            entry = strtoull(argv[i] + 6, NULL, 0);
        else if (strncmp(argv[i], "mark=", 5) == 0)
            mark = strtoull(argv[i] + 5, NULL, 0);
        else if (strncmp(argv[i], "out=", 4) == 0)
            out_path = argv[i] + 4;
        else {
            fprintf(stderr, "insn_count_plugin: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    if (!entry || !out_path) {
        fprintf(stderr, "insn_count_plugin: needs entry=<address> and out=<file>\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
