"""Index formulas compiled into one register program and run by a small numba virtual machine.

:func:`compile_program` lowers several parsed formulas (:mod:`ecoassess.formula` trees) into one linear list of
instructions ``(opcode, dest, a, b)`` over float32 registers: registers ``0 .. len(roles) - 1`` hold the band
inputs, a load-constant instruction fills a register with a constant, every other instruction applies one
element-wise operation. An instruction is keyed by its opcode and operand values (constants by their float32
value), so a subexpression shared within or across formulas is computed once; registers are reused after their
last use. :func:`run` executes the list over blocks of ``BLOCK`` pixels, one loop over the block per instruction
(loops that vectorise, no per-pixel dispatch), without full-chunk temporaries. The program is data: nothing is
passed to ``eval``/``exec`` and no code is generated.

The values are those of :func:`ecoassess.formula.evaluate` on float32 arrays (numpy 2, NEP 50): a subtree of
constants is folded with the same Python/numpy scalar arithmetic, a constant meeting an array is rounded to
float32, and every array operation is float32. ``+ - * /``, ``sqrt``, ``abs``, ``min``/``max`` and powers with a
constant exponent of -1, 0, 0.5, 1 or 2 (numpy's fast paths: reciprocal, ones, sqrt, copy, square) are bit for
bit numpy's; other powers (``powf``), ``exp``, ``log`` and ``tanh`` use the C library and may differ from numpy's
SIMD versions by a few units in the last place. NaN rules: x/0 is NaN, a power that would be ±inf is NaN,
``sqrt``/``log`` outside their domain are NaN, ``min``/``max`` and every operation propagate NaN.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numba
import numpy as np

from ecoassess import formula as fx

_JIT = dict(nogil=True, cache=True, error_model="numpy")  # numpy: x/0 gives inf/NaN (no check that blocks SIMD)

BLOCK = 1024  # pixels per block: the register file (n_registers x BLOCK float32) stays in cache

# NAN_IF_INF ends a power on numpy's fast paths (x ** 2 is x·x, then ±inf → NaN as for every power)
CONST, ADD, SUB, MUL, DIV, NEG, POW, SQRT, ABS, EXP, LOG, TANH, MIN, MAX, NAN_IF_INF = range(15)

_BINARY = {"+": ADD, "-": SUB, "*": MUL, "/": DIV}
_FUNCTIONS = {"sqrt": SQRT, "abs": ABS, "exp": EXP, "log": LOG, "tanh": TANH, "min": MIN, "max": MAX}
_TWO_OPERANDS = (ADD, SUB, MUL, DIV, POW, MIN, MAX)
_NAN32 = np.float32(np.nan)


@dataclass(frozen=True, eq=False)
class Program:
    """A compiled list of instructions; ``outputs[k]`` is the register holding output ``k`` after a block."""

    code: np.ndarray  # int32 (n_instr, 4): opcode, dest register, src a (constant index for CONST), src b
    consts: np.ndarray  # float32
    n_registers: int
    outputs: np.ndarray  # int32, one register per output
    roles: tuple[str, ...]  # input order: register i holds roles[i]


@dataclass(frozen=True)
class _Const:
    """A folded constant (a Python or numpy scalar, as the numpy evaluation would hold it)."""

    value: object


class _Lowering:
    """Lowers trees into value-numbered instructions: value ids 0..n_roles-1 are the inputs."""

    def __init__(self, roles):
        self.roles = {r: i for i, r in enumerate(roles)}
        self.instructions: list[tuple[int, int, int]] = []  # (opcode, a, b) of value n_roles + position
        self.keys: dict[tuple, int] = {}
        self.consts: list[np.float32] = []

    def emit(self, opcode, a, b=0) -> int:
        key = (opcode, a, b)
        if key not in self.keys:
            self.keys[key] = len(self.roles) + len(self.instructions)
            self.instructions.append(key)
        return self.keys[key]

    def value(self, operand) -> int:
        """The value id of an operand, loading a constant (rounded to float32, as numpy does) if needed."""
        if not isinstance(operand, _Const):
            return operand
        with np.errstate(over="ignore"):
            v = np.float32(operand.value)
        key = (CONST, int(v.view(np.uint32)))  # by bits: -0.0 and 0.0 stay apart
        if key not in self.keys:
            self.keys[key] = len(self.roles) + len(self.instructions)
            self.instructions.append((CONST, len(self.consts), 0))
            self.consts.append(v)
        return self.keys[key]

    def lower(self, node, constants: dict):
        """A value id, or a _Const when ``node`` involves no band (folded like the numpy evaluation)."""
        if isinstance(node, fx.Num):
            return _Const(node.value)
        if isinstance(node, fx.Name):
            if node.name in self.roles:
                return self.roles[node.name]
            if node.name not in constants:
                raise fx.FormulaError(f"no value given for {node.name!r}")
            return _Const(constants[node.name])
        if isinstance(node, fx.Unary):
            x = self.lower(node.operand, constants)
            if node.op == "+":
                return x
            return _fold(fx.Unary("-", fx.Num(x.value))) if isinstance(x, _Const) else self.emit(NEG, x)
        if isinstance(node, fx.Binary):
            a, b = self.lower(node.left, constants), self.lower(node.right, constants)
            if isinstance(a, _Const) and isinstance(b, _Const):
                return _fold(fx.Binary(node.op, fx.Num(a.value), fx.Num(b.value)))
            if node.op == "**":
                return self.power(a, b)
            return self.emit(_BINARY[node.op], self.value(a), self.value(b))
        if isinstance(node, fx.Call):
            args = [self.lower(a, constants) for a in node.args]
            if len(args) == 1:
                x = args[0]
                return _fold(fx.Call(node.func, (fx.Num(x.value),))) if isinstance(x, _Const) else \
                    self.emit(_FUNCTIONS[node.func], x)
            out = args[0]  # min/max: pairwise from the left, as formula._call
            for other in args[1:]:
                if isinstance(out, _Const) and isinstance(other, _Const):
                    out = _fold(fx.Call(node.func, (fx.Num(out.value), fx.Num(other.value))))
                else:
                    out = self.emit(_FUNCTIONS[node.func], self.value(out), self.value(other))
            return out
        raise fx.FormulaError(f"not an expression node: {node!r}")

    def power(self, base: int, exponent) -> int:
        """``base ** exponent`` with numpy's fast paths for a constant exponent; ±inf becomes NaN."""
        if isinstance(exponent, _Const):
            with np.errstate(over="ignore"):
                e = np.float32(exponent.value)  # numpy compares the float32 exponent
            if e == 0:
                return self.value(_Const(1.0))  # ones_like: 1 everywhere, NaN inputs included
            if e == -1:
                x = self.emit(DIV, self.value(_Const(1.0)), base)  # reciprocal: x = 0 gives ±inf, here NaN
            elif e == 0.5:
                x = self.emit(SQRT, base)
            elif e == 1:
                x = base
            elif e == 2:
                x = self.emit(MUL, base, base)
            else:
                return self.emit(POW, base, self.value(exponent))
            return self.emit(NAN_IF_INF, x)
        return self.emit(POW, self.value(base), exponent)


def _fold(node) -> _Const:
    """A constant-only node evaluated by formula.evaluate itself, so with exactly its scalar arithmetic."""
    value = fx.evaluate(node, {})
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise fx.FormulaError(f"constant part {node!r} of a formula is not a real number: {value!r}")
    return _Const(value)


def compile_program(trees: list, roles: list[str], constants: list[dict]) -> Program:
    """One program computing every tree (``trees[k]`` with constant values ``constants[k]``) over ``roles``."""
    roles = tuple(roles)
    lowering = _Lowering(roles)
    outputs = [lowering.value(lowering.lower(tree, consts)) for tree, consts in zip(trees, constants, strict=True)]
    code, n_registers, out_registers = _allocate(lowering.instructions, len(roles), outputs)
    return Program(code=code, consts=np.array(lowering.consts, np.float32).reshape(-1), n_registers=n_registers,
                   outputs=np.array(out_registers, np.int32).reshape(-1), roles=roles)


def _allocate(instructions, n_roles, outputs):
    """Registers for the live values: constants loaded first (kept), others freed after their last use."""
    n_values = n_roles + len(instructions)
    live = np.zeros(n_values, bool)
    live[outputs] = True
    last_use = [-1] * n_values
    for k in range(len(instructions) - 1, -1, -1):  # backwards: drop what no output needs (x ** 0 drops x)
        opcode, a, b = instructions[k]
        if live[n_roles + k] and opcode != CONST:
            for src in (a, b) if opcode in _TWO_OPERANDS else (a,):
                live[src] = True
                last_use[src] = max(last_use[src], k)
    kept = set(outputs)
    register = {i: i for i in range(n_roles)}
    free: list[int] = []
    n_registers = n_roles

    def new_register():
        nonlocal n_registers
        if free:
            return heapq.heappop(free)
        n_registers += 1
        return n_registers - 1

    code = []
    for k, (opcode, a, b) in enumerate(instructions):  # constants first: loaded once per call, never freed
        if opcode == CONST and live[n_roles + k]:
            register[n_roles + k] = new_register()
            code.append((CONST, register[n_roles + k], a, 0))
    free.extend(i for i in range(n_roles) if not live[i])  # only now: input registers are reloaded every block
    heapq.heapify(free)
    for k, (opcode, a, b) in enumerate(instructions):
        value = n_roles + k
        if opcode == CONST or not live[value]:
            continue
        binary = opcode in _TWO_OPERANDS
        register[value] = new_register()  # before freeing the sources: a dest aliasing a source would fail
        # LLVM's run-time overlap check and leave that loop scalar
        code.append((opcode, register[value], register[a], register[b] if binary else 0))
        for src in {a, b} if binary else {a}:
            if last_use[src] == k and src not in kept and (src < n_roles or instructions[src - n_roles][0] != CONST):
                heapq.heappush(free, register[src])
    return np.array(code, np.int32).reshape(-1, 4), n_registers, [register[v] for v in outputs]


def evaluate_program(program: Program, blocks: list[np.ndarray]) -> np.ndarray:
    """Run ``program`` on one chunk: ``blocks[i]`` is role ``program.roles[i]`` (all one shape).

    Returns float32 ``(n_outputs, *shape)``. Blocks are converted to float32 first (the readers give float32,
    for which the values equal the numpy evaluation's bit for bit, see the module docstring).
    """
    if len(blocks) != len(program.roles):
        raise ValueError(f"the program takes {len(program.roles)} input(s) ({', '.join(program.roles)}), "
                         f"got {len(blocks)}")
    shape = np.shape(blocks[0])
    inputs = np.empty((len(blocks), int(np.prod(shape))), np.float32)
    for row, block in zip(inputs, blocks):
        row[:] = np.asarray(block).reshape(-1)
    out = np.empty((len(program.outputs), inputs.shape[1]), np.float32)
    run(program.code, program.consts, program.outputs, inputs, out, program.n_registers)
    return out.reshape((len(program.outputs),) + shape)


@numba.njit(**_JIT)
def run(code, consts, outputs, inputs, out, n_registers):
    """Execute ``code`` on ``inputs`` (float32, roles x pixels) into ``out`` (float32, outputs x pixels)."""
    npx = out.shape[1]
    regs = np.empty((n_registers, BLOCK), np.float32)
    for k in range(code.shape[0]):
        if code[k, 0] == CONST:
            regs[code[k, 1], :] = consts[code[k, 2]]
    for start in range(0, npx, BLOCK):
        m = min(BLOCK, npx - start)
        for j in range(inputs.shape[0]):
            regs[j, :m] = inputs[j, start:start + m]
        for k in range(code.shape[0]):
            opcode = code[k, 0]
            if opcode != CONST:
                _execute(opcode, regs[code[k, 1]], regs[code[k, 2]], regs[code[k, 3]], m)
        for k in range(outputs.shape[0]):
            out[k, start:start + m] = regs[outputs[k], :m]


@numba.njit(**_JIT)
def _execute(opcode, d, a, b, m):
    """One instruction over the first ``m`` cells of the registers: ``d = a op b`` (or ``d = op a``)."""
    if opcode == ADD:
        for i in range(m):
            d[i] = a[i] + b[i]
    elif opcode == SUB:
        for i in range(m):
            d[i] = a[i] - b[i]
    elif opcode == MUL:
        for i in range(m):
            d[i] = a[i] * b[i]
    elif opcode == DIV:
        for i in range(m):
            q = a[i] / b[i]
            d[i] = q if b[i] != 0 else _NAN32
    elif opcode == NEG:
        for i in range(m):
            d[i] = -a[i]
    elif opcode == POW:
        for i in range(m):
            p = a[i] ** b[i]
            d[i] = p if not math.isinf(p) else _NAN32
    elif opcode == NAN_IF_INF:
        for i in range(m):
            d[i] = a[i] if not math.isinf(a[i]) else _NAN32
    elif opcode == SQRT:
        for i in range(m):
            d[i] = math.sqrt(a[i])
    elif opcode == ABS:
        for i in range(m):
            d[i] = abs(a[i])
    elif opcode == EXP:
        for i in range(m):
            d[i] = math.exp(a[i])
    elif opcode == LOG:
        for i in range(m):
            x = a[i]
            d[i] = math.log(x) if x > 0 else _NAN32
    elif opcode == TANH:
        for i in range(m):
            d[i] = math.tanh(a[i])
    elif opcode == MIN:
        for i in range(m):
            x, y = a[i], b[i]
            d[i] = x if (x < y or x != x) else y
    elif opcode == MAX:
        for i in range(m):
            x, y = a[i], b[i]
            d[i] = x if (x > y or x != x) else y
