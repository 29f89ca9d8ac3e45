/* A small stack-machine bytecode interpreter (switch dispatch) running two
 * programs: a prime count by trial division (tight loops) and a recursive
 * Fibonacci (bytecode calls). Indirect branches and unpredictable control
 * flow, the shape of CoreMark's state machine and of real script engines. */
#include "bench_util.h"

enum { PRIME_LIMIT = BENCH_SIZE(150000, 1500), FIB_N = BENCH_SIZE(29, 12) };

typedef enum {
  OP_HALT,
  OP_PUSH,  /* imm: push imm */
  OP_LOAD,  /* k: push fp[k] */
  OP_STORE, /* k: fp[k] = pop */
  OP_ADD,
  OP_SUB,
  OP_MUL,
  OP_MOD,
  OP_LT,
  OP_LE,
  OP_JMP,  /* label */
  OP_JZ,   /* label: jump if pop == 0 */
  OP_ADDI, /* k imm: fp[k] += imm (superinstruction) */
  OP_CALL, /* label nargs */
  OP_RET,  /* return pop; callee frame is dropped */
  OP_DUP,
  OP_POP,
} Op;

enum { MAX_CODE = 256, MAX_LABELS = 32, STACK = 1 << 16, CALLS = 1 << 12 };

typedef struct {
  int32_t code[MAX_CODE];
  int32_t len;
  int32_t label_at[MAX_LABELS];
  int32_t fixup_at[MAX_CODE]; /* code indices holding a label id until resolved */
  int32_t fixups;
} Program;

static void emit(Program* p, int32_t v) {
  p->code[p->len++] = v;
}
static void place(Program* p, int32_t label) {
  p->label_at[label] = p->len;
}
static void op0(Program* p, Op op) {
  emit(p, op);
}
static void op1(Program* p, Op op, int32_t a) {
  emit(p, op);
  emit(p, a);
}
/* A jump or call whose target label is resolved by resolve_labels(). */
static void op_label(Program* p, Op op, int32_t label) {
  emit(p, op);
  p->fixup_at[p->fixups++] = p->len;
  emit(p, label);
}
static void resolve_labels(Program* p) {
  for (int32_t i = 0; i < p->fixups; i++)
    p->code[p->fixup_at[i]] = p->label_at[p->code[p->fixup_at[i]]];
}

static int64_t run(const int32_t* code, int32_t entry, int32_t locals) {
  static int64_t stack[STACK];
  static int32_t call_pc[CALLS], call_fp[CALLS];
  int32_t sp = locals, fp = 0, depth = 0, pc = entry;
  for (int32_t i = 0; i < locals; i++) stack[i] = 0;
  for (;;) {
    switch ((Op)code[pc++]) {
    case OP_HALT:
      return stack[sp - 1];
    case OP_PUSH:
      stack[sp++] = code[pc++];
      break;
    case OP_LOAD:
      stack[sp++] = stack[fp + code[pc++]];
      break;
    case OP_STORE:
      stack[fp + code[pc++]] = stack[--sp];
      break;
    case OP_ADD:
      sp--;
      stack[sp - 1] += stack[sp];
      break;
    case OP_SUB:
      sp--;
      stack[sp - 1] -= stack[sp];
      break;
    case OP_MUL:
      sp--;
      stack[sp - 1] *= stack[sp];
      break;
    case OP_MOD:
      sp--;
      stack[sp - 1] %= stack[sp];
      break;
    case OP_LT:
      sp--;
      stack[sp - 1] = stack[sp - 1] < stack[sp];
      break;
    case OP_LE:
      sp--;
      stack[sp - 1] = stack[sp - 1] <= stack[sp];
      break;
    case OP_JMP:
      pc = code[pc];
      break;
    case OP_JZ:
      pc = stack[--sp] == 0 ? code[pc] : pc + 1;
      break;
    case OP_ADDI:
      stack[fp + code[pc]] += code[pc + 1];
      pc += 2;
      break;
    case OP_CALL:
      call_pc[depth] = pc + 2;
      call_fp[depth++] = fp;
      fp = sp - code[pc + 1];
      pc = code[pc];
      break;
    case OP_RET: {
      int64_t result = stack[--sp];
      sp = fp;
      stack[sp++] = result;
      fp = call_fp[--depth];
      pc = call_pc[depth];
      break;
    }
    case OP_DUP:
      stack[sp] = stack[sp - 1];
      sp++;
      break;
    case OP_POP:
      sp--;
      break;
    default:
      printf("bad opcode %d\n", (int)code[pc - 1]);
      exit(1);
    }
  }
}

/* locals: 0 = n, 1 = count, 2 = d, 3 = is_prime */
static void build_primes(Program* p, int32_t limit) {
  enum { OUTER, INNER, END_INNER, COMPOSITE, DONE };
  op1(p, OP_PUSH, 2), op1(p, OP_STORE, 0);
  place(p, OUTER); /* while (n < limit) */
  op1(p, OP_LOAD, 0), op1(p, OP_PUSH, limit), op0(p, OP_LT), op_label(p, OP_JZ, DONE);
  op1(p, OP_PUSH, 2), op1(p, OP_STORE, 2);
  op1(p, OP_PUSH, 1), op1(p, OP_STORE, 3);
  place(p, INNER); /* while (d * d <= n) */
  op1(p, OP_LOAD, 2), op0(p, OP_DUP), op0(p, OP_MUL), op1(p, OP_LOAD, 0), op0(p, OP_LE);
  op_label(p, OP_JZ, END_INNER);
  op1(p, OP_LOAD, 0), op1(p, OP_LOAD, 2), op0(p, OP_MOD), op_label(p, OP_JZ, COMPOSITE);
  op1(p, OP_ADDI, 2), emit(p, 1); /* d += 1 */
  op_label(p, OP_JMP, INNER);
  place(p, COMPOSITE);
  op1(p, OP_PUSH, 0), op1(p, OP_STORE, 3);
  place(p, END_INNER);
  op1(p, OP_LOAD, 1), op1(p, OP_LOAD, 3), op0(p, OP_ADD), op1(p, OP_STORE, 1);
  op1(p, OP_ADDI, 0), emit(p, 1); /* n += 1 */
  op_label(p, OP_JMP, OUTER);
  place(p, DONE);
  op1(p, OP_LOAD, 1), op0(p, OP_HALT);
}

/* fib(n) = n < 2 ? n : fib(n-1) + fib(n-2); the entry pushes n and calls it. */
static int32_t build_fib(Program* p, int32_t n) {
  enum { FIB, RECURSE };
  place(p, FIB);
  op1(p, OP_LOAD, 0), op1(p, OP_PUSH, 2), op0(p, OP_LT), op_label(p, OP_JZ, RECURSE);
  op1(p, OP_LOAD, 0), op0(p, OP_RET);
  place(p, RECURSE);
  op1(p, OP_LOAD, 0), op1(p, OP_PUSH, 1), op0(p, OP_SUB), op_label(p, OP_CALL, FIB), emit(p, 1);
  op1(p, OP_LOAD, 0), op1(p, OP_PUSH, 2), op0(p, OP_SUB), op_label(p, OP_CALL, FIB), emit(p, 1);
  op0(p, OP_ADD), op0(p, OP_RET);
  int32_t entry = p->len;
  op1(p, OP_PUSH, n), op_label(p, OP_CALL, FIB), emit(p, 1);
  op0(p, OP_HALT);
  return entry;
}

int main(void) {
  static Program primes, fib;
  build_primes(&primes, PRIME_LIMIT);
  resolve_labels(&primes);
  int64_t count = run(primes.code, 0, 4);
  int32_t entry = build_fib(&fib, FIB_N);
  resolve_labels(&fib);
  int64_t f = run(fib.code, entry, 0);
  printf("vm primes_below(%d)=%" PRId64 " fib(%d)=%" PRId64 "\n", PRIME_LIMIT, count, FIB_N, f);
  return 0;
}
