#!/usr/bin/env python3
"""gen.py - random signatures for the differential ABI test (test_abi.c).

Writes three files into --outdir:

  abi_cases.h  the struct types, one prototype per case, the globals
  abi_cases.c  abi_case_N for every case: built into libcapffi_abicases.so
  abi_table.c  per case: the capffi signature, a function that fills random
               arguments and calls abi_case_N directly, the result's kind
               and members, and what the x86-64 System V psABI predicts
               for it (stack words, the libffi < 3.4.7 defect shape)

Each abi_case_N records every scalar it receives (each struct member read
by field, small integers read at their declared type, variadic arguments
read with va_arg at their declared type) in abi_seen[], mixes them in
order into a 64-bit hash and derives its result from the hash:
bit 7 for bool, the low bits for integers, exactly representable values
for floats, a different hash per member for structs. A void case stores
the hash in abi_last_hash.

The cases are random but reproducible (--seed), biased toward what a
hand-written calling convention gets wrong: registers running out, ints
and floats interleaved, every scalar type, structs of every size class and
eightbyte class, nested structs, struct results in registers and in
memory, a struct that needs two registers when one is left, signatures
whose stack need exceeds the direct call's 16 words, and variadic
functions: fixed parameters of any type, then a tail of the types a
variadic argument may have, long enough that the integer registers, the
SSE registers or both run out and the tail continues on the stack. The
psABI classifies variadic arguments as it does fixed ones; the caller
also sets %al, which the callee's va_start relies on.

Standard library only.
"""

import argparse
import collections
import os
import random
import sys

DEFAULT_SEED = 0x5EED_AB1
DEFAULT_CASES = 300
MAX_ARITY = 20
MAX_LEAVES = 512  # ABI_MAX_LEAVES in abi_table.h
ARG_BYTES = 64  # ABI_ARG_BYTES in abi_table.h
GP_REGS = 6
SSE_REGS = 8
DIRECT_STACK_WORDS = 16  # CAPFFI__ABI_STACK in src/call/abi.h


class Scalar:
    def __init__(self, name, ctype, size, kind):
        self.name = name
        self.ctype = ctype
        self.size = size
        self.align = size
        self.kind = kind  # 'b' bool, 's' signed, 'u' unsigned, 'f', 'd', 'p'

    @property
    def cls(self):
        return 'SSE' if self.kind in 'fd' else 'INT'


SCALARS = {
    s.name: s
    for s in [
        Scalar('bool', 'bool', 1, 'b'),
        Scalar('i8', 'int8_t', 1, 's'),
        Scalar('u8', 'uint8_t', 1, 'u'),
        Scalar('i16', 'int16_t', 2, 's'),
        Scalar('u16', 'uint16_t', 2, 'u'),
        Scalar('i32', 'int32_t', 4, 's'),
        Scalar('u32', 'uint32_t', 4, 'u'),
        Scalar('i64', 'int64_t', 8, 's'),
        Scalar('u64', 'uint64_t', 8, 'u'),
        Scalar('isize', 'ptrdiff_t', 8, 's'),
        Scalar('usize', 'size_t', 8, 'u'),
        Scalar('f32', 'float', 4, 'f'),
        Scalar('f64', 'double', 8, 'd'),
        Scalar('pointer', 'void *', 8, 'p'),
    ]
}
INT_NAMES = [n for n, s in SCALARS.items() if s.cls == 'INT']
FLOAT_NAMES = ['f32', 'f64']
# What a variadic argument may be (src/types/sig.c): the types C's default
# argument promotions leave alone, structs excepted.
VARIADIC_INT_NAMES = ['i32', 'u32', 'i64', 'u64', 'isize', 'usize', 'pointer']
# The types those promotions change: refused in a variadic tail, and not
# the last fixed parameter either (va_start names it; C11 7.16.1.4 leaves
# a promoted one undefined).
PROMOTED = {'bool', 'i8', 'u8', 'i16', 'u16', 'f32'}

# enum abi_ret in abi_table.h, by result type.
RET_ENUM = {
    'void': 'ABI_R_VOID',
    'bool': 'ABI_R_BOOL',
    'i8': 'ABI_R_I8',
    'u8': 'ABI_R_U8',
    'i16': 'ABI_R_I16',
    'u16': 'ABI_R_U16',
    'i32': 'ABI_R_I32',
    'u32': 'ABI_R_U32',
    'i64': 'ABI_R_I64',
    'u64': 'ABI_R_U64',
    'isize': 'ABI_R_I64',
    'usize': 'ABI_R_U64',
    'f32': 'ABI_R_F32',
    'f64': 'ABI_R_F64',
    'pointer': 'ABI_R_PTR',
}


def round_up(n, a):
    return (n + a - 1) // a * a


class Struct:
    """A struct by value, laid out as C lays it out (natural alignment)."""

    def __init__(self, fields):
        self.fields = list(fields)
        off = 0
        align = 1
        self.offsets = []
        for f in self.fields:
            off = round_up(off, f.align)
            self.offsets.append(off)
            off += f.size
            align = max(align, f.align)
        self.align = align
        self.size = round_up(off, align)
        self.name = '{ ' + ', '.join(sig_of(f) for f in self.fields) + ' }'

    def leaves(self, path='', base=0):
        """(path, scalar, offset) for every scalar member, in order."""
        for i, (f, off) in enumerate(zip(self.fields, self.offsets)):
            p = '%s.f%d' % (path, i)
            if isinstance(f, Struct):
                yield from f.leaves(p, base + off)
            else:
                yield p, f, base + off


def S(*fields):
    return Struct(SCALARS[f] if isinstance(f, str) else f for f in fields)


def sig_of(t):
    return t.name


def is_struct(t):
    return isinstance(t, Struct)


def leaves_of(t):
    return list(t.leaves()) if is_struct(t) else [('', t, 0)]


# One signature: its result (None for void), its parameters and, for a
# variadic function, how many of them are fixed (the rest are its tail).
Case = collections.namedtuple('Case', 'ret args nfixed', defaults=(None,))


def variadic(c):
    return c.nfixed is not None


# ---- the psABI, as far as capffi's types need it --------------------------


def eightbytes(t):
    """Classes of the eightbytes of a struct of at most 16 bytes (INTEGER
    wins over SSE within an eightbyte), or None when it goes in memory."""
    if t.size > 16:
        return None
    cls = [None] * ((t.size + 7) // 8)
    for _, s, off in t.leaves():
        k = off // 8
        if s.cls == 'INT':
            cls[k] = 'INT'
        elif cls[k] is None:
            cls[k] = 'SSE'
    return None if None in cls else cls


class Alloc:
    """Registers and stack words handed out while placing arguments."""

    def __init__(self, ret):
        # A struct result in memory takes the first integer register.
        self.gp = 1 if is_struct(ret) and eightbytes(ret) is None else 0
        self.sse = 0
        self.stack = 0
        self.defect = False

    def place(self, t):
        if not is_struct(t):
            if t.cls == 'INT' and self.gp < GP_REGS:
                self.gp += 1
            elif t.cls == 'SSE' and self.sse < SSE_REGS:
                self.sse += 1
            else:
                self.stack += 1
            return
        cls = eightbytes(t)
        if cls is not None:
            ngp = cls.count('INT')
            nsse = cls.count('SSE')
            if self.gp + ngp <= GP_REGS and self.sse + nsse <= SSE_REGS:
                # libffi before 3.4.7 copies the whole struct into the slot
                # of its first integer eightbyte; from the sixth integer
                # register that runs into the first SSE register's slot,
                # which an earlier argument holds once any SSE register
                # is taken (docs/limits.md).
                if cls == ['INT', 'SSE'] and self.gp == GP_REGS - 1 and \
                        self.sse >= 1:
                    self.defect = True
                self.gp += ngp
                self.sse += nsse
                return
        self.stack += (t.size + 7) // 8


def plan(ret, args):
    a = Alloc(ret)
    for t in args:
        a.place(t)
    return a


# ---- random types ----------------------------------------------------------

# Struct shapes every run draws from: one per class pattern the psABI
# distinguishes (SSE, INTEGER, mixed, partial eightbytes, nested, memory).
CURATED = [
    S('f32'), S('f64'), S('i8'), S('bool', 'u16'), S('f32', 'f32'),
    S('i16', 'f32'), S('u8', 'u8', 'u8'), S('i8', 'f32'), S('i32', 'pointer'),
    S('f32', 'f32', 'f32'), S('f64', 'i32'), S('i64', 'f64'),
    S('f64', 'i64'), S('i32', 'i32', 'i32'), S(S('f32', 'f32'), 'i32'),
    S('i64', 'f32'), S('i32', 'f32', 'f64'), S('f64', 'f64'),
    S('f32', 'f32', 'f32', 'f32'), S('i64', 'i64'), S('u8', 'i64'),
    S('f64', 'f64', 'f64'), S('i64', 'i64', 'i64'),
    S(S('i64', 'f64'), S('f32', 'f32', 'i64')),
    S(S('f64', 'f64', 'f64'), S('i64', 'i64', 'pointer')),
    S('i8', S('f64', 'i16'), 'f32', S('u64', 'f64')),
]


def rand_scalar(rng, fpref):
    if rng.random() < fpref:
        return SCALARS[rng.choice(FLOAT_NAMES)]
    return SCALARS[rng.choice(INT_NAMES)]


def rand_struct(rng, fpref, depth=1):
    n = rng.randint(1, 4)
    fields = []
    for _ in range(n):
        if depth < 2 and rng.random() < 0.25:
            fields.append(rand_struct(rng, fpref, depth + 1))
        else:
            fields.append(rand_scalar(rng, fpref))
    return Struct(fields)


def struct_class(t):
    """'small-INT', 'small-SSE', 'II', 'SS', 'IS', 'SI' or 'big'."""
    cls = eightbytes(t)
    if cls is None:
        return 'big'
    if len(cls) == 1:
        return 'small-' + cls[0]
    return ''.join(c[0] for c in cls)


STRUCT_CLASSES = ['small-INT', 'small-SSE', 'II', 'SS', 'IS', 'SI', 'big']
FPREF = {'small-INT': 0.2, 'small-SSE': 0.95, 'II': 0.15, 'SS': 0.95,
         'IS': 0.5, 'SI': 0.5, 'big': 0.4}


def struct_of_class(rng, target, curated=0.3):
    """A struct of the given class: curated sometimes, else random."""
    if rng.random() < curated:
        fits = [s for s in CURATED if struct_class(s) == target]
        if fits:
            return rng.choice(fits)
    while True:
        s = rand_struct(rng, FPREF[target])
        if struct_class(s) == target and s.size <= 48:
            return s


def rand_struct_any(rng):
    return struct_of_class(rng, rng.choice(STRUCT_CLASSES))


def rand_arg(rng, p_float, p_struct):
    r = rng.random()
    if r < p_struct:
        return rand_struct_any(rng)
    return rand_scalar(rng, p_float / max(1e-9, 1 - p_struct))


def rand_ret(rng):
    r = rng.random()
    if r < 0.1:
        return None  # void
    if r < 0.55:
        return SCALARS[rng.choice(list(SCALARS))]
    return rand_struct_any(rng)


# ---- case shapes -----------------------------------------------------------


def mode_mixed(rng, ret):
    n = rng.randint(0, 12)
    return [rand_arg(rng, 0.4, 0.25) for _ in range(n)]


def mode_ints(rng, ret):
    n = rng.randint(7, MAX_ARITY)
    return [rand_arg(rng, 0.2, 0.05) for _ in range(n)]


def mode_floats(rng, ret):
    n = rng.randint(9, MAX_ARITY)
    return [rand_arg(rng, 0.7, 0.05) for _ in range(n)]


def mode_both(rng, ret):
    n = rng.randint(14, MAX_ARITY)
    return [rand_arg(rng, 0.47, 0.08) for _ in range(n)]


def mode_structs(rng, ret):
    n = rng.randint(1, 10)
    return [rand_arg(rng, 0.4, 0.7) for _ in range(n)]


def mode_last_gp(rng, ret):
    """Five integer registers taken (floats interleaved), then a struct of
    two eightbytes: INTEGER+INTEGER goes wholly to the stack while a later
    integer still takes the last register; INTEGER+SSE takes it (the libffi
    defect shape when an SSE register is already in use)."""
    args = []
    a = Alloc(ret)
    fpref = rng.choice([0.0, 0.3, 0.5])
    while a.gp < GP_REGS - 1:
        if rng.random() < fpref:
            t = rand_scalar(rng, 1.0)
        elif rng.random() < 0.15:
            t = struct_of_class(rng, 'small-INT')
        else:
            t = rand_scalar(rng, 0.0)
        a.place(t)
        args.append(t)
    args.append(struct_of_class(rng, rng.choice(['II', 'II', 'IS', 'SI']),
                                curated=0.5))
    tail = [rand_scalar(rng, 0.0)]
    tail += [rand_arg(rng, 0.4, 0.2) for _ in range(rng.randint(0, 3))]
    rng.shuffle(tail)
    return (args + tail)[:MAX_ARITY]


def mode_last_sse(rng, ret):
    """Seven SSE registers taken, then a two-SSE struct (to the stack) and
    a later float (the last SSE register)."""
    args = []
    a = Alloc(ret)
    while a.sse < SSE_REGS - 1:
        t = rand_scalar(rng, 0.8)
        a.place(t)
        args.append(t)
    args.append(struct_of_class(rng, 'SS', curated=0.5))
    args.append(rand_scalar(rng, 1.0))
    args += [rand_arg(rng, 0.5, 0.2) for _ in range(rng.randint(0, 2))]
    return args[:MAX_ARITY]


def mode_big_stack(rng, ret):
    """Big structs and spilled scalars, around the 16 stack words a direct
    call may pass: over it the call takes libffi."""
    args = []
    for _ in range(rng.randint(2, 5)):
        args.append(struct_of_class(rng, 'big', curated=0.3))
    for _ in range(rng.randint(0, 14)):
        args.append(rand_arg(rng, 0.4, 0.1))
    rng.shuffle(args)
    return args[:MAX_ARITY]


def rand_variadic(rng, fpref):
    """A variadic argument: f64 with probability fpref, else an integer or
    a pointer."""
    if rng.random() < fpref:
        return SCALARS['f64']
    return SCALARS[rng.choice(VARIADIC_INT_NAMES)]


def promoted(t):
    return not is_struct(t) and t.name in PROMOTED


def mode_variadic(rng, ret):
    """A variadic function: 1 to 6 fixed parameters of any type, then a
    tail of 1 to 14 variadic arguments. A short tail, or one long enough
    that the integer registers, the SSE registers or both run out and the
    tail goes on in stack words; sometimes after big structs in the fixed
    part, up to and past the direct call's 16 stack words. Returns the
    fixed parameters and the tail."""
    kind = rng.choice(['few', 'ints', 'floats', 'long', 'both', 'both',
                       'stack'])
    nfixed = rng.randint(1, 6)
    if kind == 'stack':
        fixed = [struct_of_class(rng, 'big', curated=0.3)
                 for _ in range(rng.randint(1, 3))]
        fixed += [rand_arg(rng, 0.4, 0.2)
                  for _ in range(max(0, nfixed - len(fixed)))]
        rng.shuffle(fixed)
    else:
        fpref = {'few': 0.4, 'ints': 0.2, 'floats': 0.6, 'long': 0.4,
                 'both': 0.4}[kind]
        fixed = [rand_arg(rng, fpref, 0.25) for _ in range(nfixed)]
    # va_start names the last fixed parameter: not a promoted type.
    while promoted(fixed[-1]):
        fixed[-1] = rand_arg(rng, 0.4, 0.25)
    if kind == 'both':
        # What the fixed part leaves of each kind of register, and one to
        # three more of each, interleaved: both kinds run out in the tail
        # and the tail goes on in stack words, unless MAX_ARITY cuts it.
        a = plan(ret, fixed)
        tail = [rand_variadic(rng, 0.0)
                for _ in range(GP_REGS - a.gp + rng.randint(1, 3))]
        tail += [SCALARS['f64']] * (SSE_REGS - a.sse + rng.randint(1, 3))
        rng.shuffle(tail)
    else:
        lo, hi, fpref = {'few': (1, 5, 0.4), 'ints': (5, 14, 0.15),
                         'floats': (7, 14, 0.85), 'long': (10, 14, 0.5),
                         'stack': (4, 14, 0.45)}[kind]
        tail = [rand_variadic(rng, fpref)
                for _ in range(rng.randint(lo, hi))]
    return fixed, tail[:MAX_ARITY - len(fixed)]


MODES = [
    (mode_mixed, 25),
    (mode_ints, 12),
    (mode_floats, 12),
    (mode_both, 12),
    (mode_structs, 14),
    (mode_last_gp, 12),
    (mode_last_sse, 5),
    (mode_big_stack, 8),
    (mode_variadic, 21),  # about one case in six
]


def fixed_cases():
    """Shapes every run includes, whatever the seed."""
    i64 = SCALARS['i64']
    f64 = SCALARS['f64']
    f32 = SCALARS['f32']
    i32 = SCALARS['i32']
    big48 = S(S('f64', 'f64', 'f64'), S('i64', 'i64', 'pointer'))
    big40 = S('f64', S('i64', 'i64'), 'f32', S('u16', 'i64'))
    big32 = S('i64', 'f64', 'i64', 'f64')
    u32 = SCALARS['u32']
    u64 = SCALARS['u64']
    ptr = SCALARS['pointer']
    plain = [
        (None, []),
        # docs/limits.md's defect shape, and the same without a float
        (f64, [i64] * 5 + [f64, S('i64', 'f64')]),
        (f64, [i64] * 5 + [S('i64', 'f64')]),
        # its first SSE register held by a struct's eightbyte
        (i32, [S('f32', 'f32')] + [i64] * 5 + [S('i32', 'f32', 'f32')]),
        # the struct result in memory takes the first integer register
        (big48, [i64] * 4 + [f32, S('i64', 'f32')]),
        # two integer eightbytes, one register left: the struct goes to
        # the stack, the later integers still take the last register
        (i64, [i64] * 5 + [S('i64', 'i64'), i32]),
        (SCALARS['u8'], [SCALARS['i8'], f64, SCALARS['u16'], f32,
                         SCALARS['pointer'], SCALARS['bool'],
                         S('i32', 'i32', 'i32'), SCALARS['i16']]),
        (S('i64', 'f64'), [i64] * 4 + [S('u8', 'i64'), SCALARS['pointer']]),
        (big48, [i64] * 3 + [S('i64', 'i64'), S('i64', 'u8'), i32]),
        # the same for SSE registers
        (f32, [f64] * 7 + [S('f64', 'f64'), f32]),
        # 16 stack words exactly (direct), then 17 and 18 (libffi)
        (i64, [i64] * 6 + [f64] * 8 + [big48, big48, big32]),
        (i64, [i64] * 6 + [f64] * 8 + [big48, big48, big40]),
        (S('f64', 'f64'), [i64] * 6 + [f64] * 8 + [big48] * 3),
        (None, [big48, big48, S('u8', 'u8', 'u8'), big48]),
        # the defect shape over 16 stack words: without flags too, this
        # signature takes libffi
        (f64, [f64] + [i64] * 5 + [S('i64', 'f64')] + [big48] * 3),
    ]
    # Variadic functions, (result, fixed parameters, variadic tail). The
    # signature language has no empty tail: at least one type follows
    # "...:".
    var = [
        # f64 only: eight SSE registers, then three stack words
        (f64, [i32], [f64] * 11),
        # integers and pointers only: the last four on the stack, 32-bit
        # ones among them
        (None, [ptr], [i32, u32, i64, u64, SCALARS['isize'],
                       SCALARS['usize'], ptr, i32, u32]),
        # promoted types and a struct among the fixed parameters; the
        # tail interleaved until both kinds of register have run out
        (S('f64', 'f64'),
         [SCALARS['i8'], f32, S('i64', 'f64'), SCALARS['u16'], i32],
         [f64, i64, f64, u32, f64, f64, i32, f64, f64, f64,
          SCALARS['usize'], f64, ptr, f64]),
        # big structs fixed, the tail after them: 16 stack words exactly
        # (direct), then 20 (libffi)
        (i64, [i32, big48, big48], [i64] * 7 + [f64] * 10),
        (S('i64', 'f64'), [i32, big48, big48, big48], [i64] * 6 + [f64] * 9),
        # the libffi defect shape as the last fixed parameter (the result
        # in memory takes the first register), a tail on the stack and in
        # an SSE register after it
        (big48, [f64] + [i64] * 4 + [S('i64', 'f64')], [i64, f64, i32]),
    ]
    return ([Case(r, a) for r, a in plain] +
            [Case(r, f + t, len(f)) for r, f, t in var])


def gen_cases(seed, ncases):
    rng = random.Random(seed)
    cases = fixed_cases()
    funcs = [m for m, _ in MODES]
    weights = [w for _, w in MODES]
    while len(cases) < ncases:
        ret = rand_ret(rng)
        mode = rng.choices(funcs, weights)[0]
        args = mode(rng, ret)
        if isinstance(args, tuple):  # variadic: fixed parameters, tail
            cases.append(Case(ret, args[0] + args[1], len(args[0])))
        else:
            cases.append(Case(ret, args))
    return cases[:ncases], rng


# ---- C output --------------------------------------------------------------


class Types:
    """C names of the struct types, each defined once, inner ones first."""

    def __init__(self):
        self.names = {}
        self.order = []

    def ctype(self, t):
        if t is None:
            return 'void'
        if not is_struct(t):
            return t.ctype
        if t.name not in self.names:
            for f in t.fields:
                self.ctype(f)
            self.names[t.name] = 'abi_s%d' % len(self.order)
            self.order.append(t)
        return self.names[t.name]

    def definitions(self):
        out = []
        for t in self.order:
            out.append('typedef struct {')
            for i, f in enumerate(t.fields):
                ct = self.ctype(f)
                sep = '' if ct.endswith('*') else ' '
                out.append('    %s%sf%d;' % (ct, sep, i))
            out.append('} %s;' % self.names[t.name])
            out.append('')
        return out


def decl(ct, name):
    return '%s%s%s' % (ct, '' if ct.endswith('*') else ' ', name)


def seen_expr(s, x):
    """A scalar's raw bits, read at its declared type, as uint64_t."""
    if s.kind == 's':
        return '(uint64_t)(int64_t)%s' % x
    if s.kind in 'bu':
        return '(uint64_t)%s' % x
    if s.kind == 'f':
        return 'abi_f32_bits(%s)' % x
    if s.kind == 'd':
        return 'abi_f64_bits(%s)' % x
    return '(uint64_t)(uintptr_t)%s' % x


def out_expr(s, k):
    """A result scalar made from the k-th derived hash."""
    h = 'abi_out(h, %d)' % k
    if s.kind == 'b':
        return '((%s >> 7) & 1) != 0' % h
    if s.kind in 'su':
        return '(%s)%s' % (s.ctype, h)
    if s.kind == 'f':
        return 'abi_f32_of(%s)' % h
    if s.kind == 'd':
        return 'abi_f64_of(%s)' % h
    return '(void *)(uintptr_t)%s' % h


def rand_expr(s):
    bits = s.size * 8
    if s.kind == 'b':
        return 'abi_rand_bool(&s)'
    if s.kind == 's':
        return '(%s)abi_rand_signed(&s, %d)' % (s.ctype, bits)
    if s.kind == 'u':
        return '(%s)abi_rand_unsigned(&s, %d)' % (s.ctype, bits)
    if s.kind == 'f':
        return 'abi_rand_f32(&s)'
    if s.kind == 'd':
        return 'abi_rand_f64(&s)'
    return 'abi_rand_ptr(&s)'


VALUE_MEMBER = {'b': 'b', 's': 'i64', 'u': 'u64', 'f': 'f32', 'd': 'f64',
                'p': 'p'}


def c_string(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def signature(case):
    """capffi's text: a variadic tail after "...:"."""
    ret, args, nfixed = case
    params = [sig_of(t) for t in args]
    if nfixed is not None:
        params[nfixed] = '...: ' + params[nfixed]
    return '(%s) -> %s' % (', '.join(params),
                           'void' if ret is None else sig_of(ret))


def write(path, lines):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(tmp, path)


def emit(cases, seed, outdir, salts):
    types = Types()
    protos = []
    for i, (ret, args, nfixed) in enumerate(cases):
        fixed = args if nfixed is None else args[:nfixed]
        params = ', '.join(decl(types.ctype(t), 'a%d' % j)
                           for j, t in enumerate(fixed)) or 'void'
        if nfixed is not None:
            params += ', ...'
        protos.append('%s(%s);' % (decl(types.ctype(ret), 'abi_case_%d' % i),
                                   params))
    banner = ('/* Generated by tests/abi/gen.py --seed %#x --cases %d: '
              'do not edit. */' % (seed, len(cases)))

    h = [banner, '#ifndef ABI_CASES_H', '#define ABI_CASES_H', '',
         '#include <stdbool.h>', '#include <stddef.h>', '#include <stdint.h>',
         '', '#define ABI_NCASES %d' % len(cases),
         '#define ABI_SEED UINT64_C(%#x)' % seed, '',
         '/* What the last case called received, scalar by scalar. */',
         'extern uint64_t abi_seen[%d];' % MAX_LEAVES,
         '/* The hash the last void case computed. */',
         'extern uint64_t abi_last_hash;', '']
    h += types.definitions()
    h += protos
    h += ['', '#endif']
    write(os.path.join(outdir, 'abi_cases.h'), h)

    c = [banner, '#include "abi_cases.h"', '', '#include <stdarg.h>',
         '#include <string.h>', '',
         'uint64_t abi_seen[%d];' % MAX_LEAVES,
         'uint64_t abi_last_hash;', '',
         'static inline uint64_t',
         'abi_mix(uint64_t h, uint64_t x)',
         '{',
         '    h ^= x;',
         '    h *= UINT64_C(0x9e3779b97f4a7c15);',
         '    return h ^ (h >> 29);',
         '}', '',
         '/* Record scalar k as received and mix it in. */',
         'static inline uint64_t',
         'abi_leaf(uint64_t h, unsigned k, uint64_t x)',
         '{',
         '    abi_seen[k] = x;',
         '    return abi_mix(h, x);',
         '}', '',
         '/* The k-th hash derived from h, for result member k. */',
         'static inline uint64_t',
         'abi_out(uint64_t h, unsigned k)',
         '{',
         '    h += UINT64_C(0x9e3779b97f4a7c15) * (k + 1);',
         '    h = (h ^ (h >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);',
         '    h = (h ^ (h >> 27)) * UINT64_C(0x94d049bb133111eb);',
         '    return h ^ (h >> 31);',
         '}', '',
         'static inline uint64_t',
         'abi_f32_bits(float f)',
         '{',
         '    uint32_t u;',
         '    memcpy(&u, &f, sizeof u);',
         '    return u;',
         '}', '',
         'static inline uint64_t',
         'abi_f64_bits(double d)',
         '{',
         '    uint64_t u;',
         '    memcpy(&u, &d, sizeof u);',
         '    return u;',
         '}', '',
         '/* Exactly representable: 24 and 53 bits, either sign. */',
         'static inline float',
         'abi_f32_of(uint64_t h)',
         '{',
         '    return (float)((int64_t)(h >> 40) - (INT64_C(1) << 23));',
         '}', '',
         'static inline double',
         'abi_f64_of(uint64_t h)',
         '{',
         '    return (double)((int64_t)(h >> 11) - (INT64_C(1) << 52));',
         '}', '']
    for i, (ret, args, nfixed) in enumerate(cases):
        c.append(types.ctype(ret))
        c.append(protos[i][:-1][protos[i].index('abi_case_'):])
        c.append('{')
        c.append('    uint64_t h = UINT64_C(%#018x);' % salts[i])
        if nfixed is not None:
            # The tail, read at the types the case passes it at.
            c.append('    va_list ap;')
            c.append('    va_start(ap, a%d);' % (nfixed - 1))
            for j in range(nfixed, len(args)):
                ct = types.ctype(args[j])
                c.append('    %s = va_arg(ap, %s);' % (decl(ct, 'a%d' % j),
                                                        ct))
            c.append('    va_end(ap);')
        k = 0
        for j, t in enumerate(args):
            for path, s, _ in leaves_of(t):
                c.append('    h = abi_leaf(h, %d, %s);'
                         % (k, seen_expr(s, 'a%d%s' % (j, path))))
                k += 1
        if ret is None:
            c.append('    abi_last_hash = abi_out(h, 0);')
        elif is_struct(ret):
            c.append('    %s r;' % types.ctype(ret))
            c.append('    memset(&r, 0, sizeof r);')
            for m, (path, s, _) in enumerate(ret.leaves()):
                c.append('    r%s = %s;' % (path, out_expr(s, m)))
            c.append('    return r;')
        else:
            c.append('    return %s;' % out_expr(ret, 0))
        c.append('}')
        c.append('')
    write(os.path.join(outdir, 'abi_cases.c'), c)

    t = [banner, '#include "abi_table.h"', '', '#include <string.h>', '',
         '#include "abi_cases.h"', '']
    rows = []
    for i, case in enumerate(cases):
        ret, args, nfixed = case
        # Variadic arguments are classified as fixed ones are.
        p = plan(ret, args)
        nleaves = 0
        names = []
        for j, a in enumerate(args):
            tail = ', variadic' if nfixed is not None and j >= nfixed else ''
            for path, s, _ in leaves_of(a):
                names.append(c_string('args[%d]%s (%s%s)'
                                      % (j, path, s.name, tail)))
                nleaves += 1
        assert nleaves <= MAX_LEAVES
        if names:
            t.append('static const char *const seen_%d[] = {' % i)
            t += ['    %s,' % n for n in names]
            t.append('};')
        if is_struct(ret):
            rt = types.ctype(ret)
            t.append('static const struct abi_member members_%d[] = {' % i)
            for path, s, _ in ret.leaves():
                t.append('    { %s, offsetof(%s, %s), sizeof(%s) },'
                         % (c_string('result%s (%s)' % (path, s.name)), rt,
                            path[1:], s.ctype))
            t.append('};')
        t.append('static void')
        t.append('run_%d(struct abi_call *c, uint64_t seed)' % i)
        t.append('{')
        t.append('    uint64_t s = seed;')
        if not args:
            t.append('    (void)s;')
        for j, a in enumerate(args):
            ct = types.ctype(a)
            v = 'a%d' % j
            if is_struct(a):
                assert a.size <= ARG_BYTES
                t.append('    %s;' % decl(ct, v))
                t.append('    memset(&%s, 0, sizeof %s);' % (v, v))
                for path, s, _ in a.leaves():
                    t.append('    %s%s = %s;' % (v, path, rand_expr(s)))
                t.append('    memcpy(c->arg[%d], &%s, sizeof %s);' % (j, v, v))
                t.append('    c->val[%d].agg.ptr = c->arg[%d];' % (j, j))
                t.append('    c->val[%d].agg.len = sizeof %s;' % (j, v))
            else:
                t.append('    %s = %s;' % (decl(ct, v), rand_expr(a)))
                t.append('    memcpy(c->arg[%d], &%s, sizeof %s);' % (j, v, v))
                t.append('    c->val[%d].%s = %s;'
                         % (j, VALUE_MEMBER[a.kind], v))
        call = 'abi_case_%d(%s)' % (i, ', '.join('a%d' % j
                                                 for j in range(len(args))))
        if ret is None:
            t.append('    %s;' % call)
            t.append('    c->want_hash = abi_last_hash;')
        else:
            t.append('    %s = %s;' % (decl(types.ctype(ret), 'r'), call))
            t.append('    memcpy(c->want, &r, sizeof r);')
        if nleaves:
            t.append('    memcpy(c->want_seen, abi_seen, %d * sizeof '
                     'abi_seen[0]);' % nleaves)
        t.append('}')
        t.append('')
        if ret is None:
            rk, rsize = 'ABI_R_VOID', '0'
        elif is_struct(ret):
            rk, rsize = 'ABI_R_STRUCT', 'sizeof(%s)' % types.ctype(ret)
        else:
            rk, rsize = RET_ENUM[ret.name], 'sizeof(%s)' % ret.ctype
        fields = [
            str(i),
            c_string('abi_case_%d' % i),
            c_string(signature(case)),
            str(len(args)),
            str(nleaves),
            'seen_%d' % i if names else 'NULL',
            rk,
            rsize,
            'members_%d' % i if is_struct(ret) else 'NULL',
            str(len(list(ret.leaves())) if is_struct(ret) else 0),
            str(p.stack),
            'true' if p.stack > DIRECT_STACK_WORDS else 'false',
            'true' if p.defect else 'false',
            'run_%d' % i,
        ]
        rows.append('    { %s },' % ', '.join(fields))
    t.append('const struct abi_case abi_cases[] = {')
    t += rows
    t.append('};')
    t.append('const unsigned abi_ncases = %d;' % len(cases))
    t.append('const uint64_t abi_seed = UINT64_C(%#x);' % seed)
    write(os.path.join(outdir, 'abi_table.c'), t)


def tail_on_stack(case):
    """The classes ('INT', 'SSE') of the variadic arguments that go to the
    stack."""
    ret, args, nfixed = case
    a = Alloc(ret)
    spilled = set()
    for j, t in enumerate(args):
        before = a.stack
        a.place(t)
        if nfixed is not None and j >= nfixed and a.stack > before:
            spilled.add(t.cls)
    return spilled


def summary(cases):
    ps = [plan(c.ret, c.args) for c in cases]
    var = [c for c in cases if variadic(c)]
    spills = [tail_on_stack(c) for c in var]
    return ('%d cases: %d over %d stack words (libffi), %d with the libffi '
            'defect shape, %d with struct arguments, %d with struct results; '
            '%d variadic: %d with variadic arguments on the stack, %d with '
            'both integer and f64 ones there'
            % (len(cases), sum(p.stack > DIRECT_STACK_WORDS for p in ps),
               DIRECT_STACK_WORDS, sum(p.defect for p in ps),
               sum(any(is_struct(t) for t in c.args) for c in cases),
               sum(is_struct(c.ret) for c in cases), len(var),
               sum(bool(s) for s in spills), sum(len(s) == 2 for s in spills)))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=lambda s: int(s, 0), default=DEFAULT_SEED,
                    help='random seed (default %#x)' % DEFAULT_SEED)
    ap.add_argument('--cases', type=int, default=DEFAULT_CASES,
                    help='number of cases (default %d)' % DEFAULT_CASES)
    ap.add_argument('--outdir', default='.', help='where to write the files')
    ap.add_argument('--list', action='store_true',
                    help='print the signatures instead of writing files')
    o = ap.parse_args(argv)
    if o.cases < len(fixed_cases()):
        ap.error('--cases must be at least %d' % len(fixed_cases()))
    cases, rng = gen_cases(o.seed, o.cases)
    salts = [rng.getrandbits(64) for _ in cases]
    if o.list:
        for i, case in enumerate(cases):
            p = plan(case.ret, case.args)
            print('%3d %-6s %s' % (i, ('S%d' % p.stack) +
                                   ('!' if p.defect else ''),
                                   signature(case)))
        print(summary(cases))
        return 0
    emit(cases, o.seed, o.outdir, salts)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
