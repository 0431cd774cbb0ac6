#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: tests/fuzz/corpus/<target>/.

    python3 tests/fuzz/make_corpus.py

The files are committed; rerun this after changing a seed below or the
input format of a target (value_decoder_fuzz.cc's header, fuzz_input.h
plus engine_harness.h's Op enum, whose tables and op codes are mirrored
here, and lane_frame_fuzz.cc's header). Regression inputs (regress-*),
minimized from crashes, are kept as they are: this script only writes the
files it names.

Standard library only: protobuf's wire format is written by hand.
"""

import math
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# --- statehub.v1.Value in protobuf's wire format (value_decoder_fuzz) ---

DICT, LIST, NAMESPACE, VALUE, ARRAY, LOCK, RLOCK, CONDITION = range(1, 9)
SEMAPHORE, BOUNDED_SEMAPHORE, EVENT, BARRIER, QUEUE, JOINABLE_QUEUE = range(
    9, 15)


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire_type, payload):
    key = varint(number << 3 | wire_type)
    if wire_type == 0:
        return key + varint(payload)
    if wire_type == 1:
        return key + payload
    return key + varint(len(payload)) + payload


class W:
    """Wire encodings of statehub.v1.Value; each returns bytes."""

    null = b""

    @staticmethod
    def bool(b):
        return field(2, 0, int(b))

    @staticmethod
    def int(i):
        return field(3, 0, i)

    @staticmethod
    def double(d):
        return field(4, 1, struct.pack("<d", d))

    @staticmethod
    def str(s):
        return field(5, 2, s.encode())

    @staticmethod
    def bytes(b):
        return field(6, 2, b)

    @staticmethod
    def list(*items):
        return field(7, 2, b"".join(field(1, 2, i) for i in items))

    @staticmethod
    def tuple(*items):
        return field(8, 2, b"".join(field(1, 2, i) for i in items))

    @staticmethod
    def map(*entries):
        return field(9, 2, b"".join(
            field(1, 2, field(1, 2, k) + field(2, 2, v)) for k, v in entries))

    @staticmethod
    def ref(name, type_):
        return field(10, 2, field(1, 2, name.encode()) + field(2, 0, type_))

    @staticmethod
    def blob(codec, data):
        return field(11, 2, field(1, 2, codec.encode()) + field(2, 2, data))


def nested(depth, inner):
    for _ in range(depth):
        inner = W.list(inner)
    return inner


def limits(max_depth=32, tiny=False):
    """value_decoder_fuzz's first byte."""
    return bytes([max_depth | (0x80 if tiny else 0)])


DECODER_SEEDS = {
    "null": W.null,
    "bool": W.bool(True),
    "false": W.bool(False),
    "int-zero": W.int(0),
    "int-negative": W.int(-1),
    "int-max": W.int(2**63 - 1),
    "int-min": W.int(-2**63),
    "double": W.double(1.5),
    "double-nan": W.double(math.nan),
    "double-negative-zero": W.double(-0.0),
    "double-inf": W.double(math.inf),
    "string": W.str("jobs"),
    "string-unicode": W.str("d\u00e9j\u00e0 \u2603"),
    "bytes": W.bytes(b"\x00\xff raw"),
    "list": W.list(W.int(1), W.str("a"), W.null),
    "tuple": W.tuple(W.int(1), W.int(2)),
    "tuple-nested": W.tuple(W.tuple(W.int(1), W.str("a")), W.double(2.0)),
    # Python's 1, 1.0 and True are one key.
    "map-equal-numbers": W.map((W.str("a"), W.int(1)), (W.int(1), W.int(2)),
                               (W.double(1.0), W.int(3)),
                               (W.bool(True), W.int(4))),
    "map-tuple-key": W.map((W.tuple(W.int(1), W.str("x")), W.list())),
    "map-nested": W.map((W.str("hosts"), W.list(W.str("a"), W.str("b"))),
                        (W.str("workers"), W.int(8))),
    "map-list-key": W.map((W.list(W.int(1)), W.int(2))),
    "map-nan-key": W.map((W.double(math.nan), W.int(1))),
    "map-tuple-nan-key": W.map((W.tuple(W.double(math.nan)), W.int(1))),
    "numbers-across-kinds": W.list(
        W.int(1), W.double(1.0), W.bool(True), W.int(2**53),
        W.double(2.0**53), W.int(2**53 + 1), W.tuple(W.int(1)),
        W.tuple(W.double(1.0)), W.double(-0.0), W.int(0)),
    "mixed-compare": W.list(W.str("a"), W.int(1), W.list(W.int(1)),
                            W.tuple(W.int(1)), W.bytes(b"a")),
    "ref": W.ref("jobs", DICT),
    "ref-no-name": W.ref("", DICT),
    "ref-bad-type": W.ref("jobs", 99),
    "blob": W.blob("pickle", b"\x80\x04K\x01."),
    "blob-no-codec": W.blob("", b"data"),
    "map-with-ref": W.map((W.str("lock"), W.ref("_anon/lock/1", LOCK))),
}
DECODER_LIMITED = {
    "deep-past-max-depth": (limits(8), nested(9, W.int(1))),
    "deep-at-max-depth": (limits(8), nested(8, W.int(1))),
    "deep-map-past-max-depth": (limits(2), W.map(
        (W.str("k"), W.list(W.list(W.int(1)))))),
    "too-big": (limits(tiny=True), W.str("x" * 100)),
    "depth-zero": (limits(0), W.list()),
}


# --- engine_fuzz's op format (fuzz_input.h, engine_fuzz.cc) ---

OPS = """SessionOpen SessionKeepalive SessionRelease SessionGoodbye
SessionsExpire Open Delete List Describe DictGet DictSet DictDelete
DictContains DictLen DictItems DictPop DictPopItem DictSetDefault DictUpdate
DictClear DictIncrement DictCompareAndSet DictGetAndSet ListLen ListGet
ListSet ListDelete ListAppend ListExtend ListInsert ListPop ListRemove
ListIndex ListCount ListContains ListReverse ListSort ListClear ListRepeat
NamespaceGet NamespaceSet NamespaceDelete NamespaceItems ValueGet ValueSet
ValueIncrement ValueCompareAndSet ValueGetAndSet ArrayLen ArrayGet ArraySet
LockAcquire LockRelease LockState ConditionWait ConditionNotify
SemaphoreAcquire SemaphoreRelease SemaphoreState EventSet EventClear
EventIsSet EventWait BarrierWait BarrierAbort BarrierReset BarrierState
QueuePut QueueGet QueueTaskDone QueueJoin QueueSize QueueState Cancel
Retire""".split()
OP = {name: code for code, name in enumerate(OPS)}

BOUNDARY_INTS = [-2**63, 2**63 - 1, -2**63 + 1, 2**63 - 2, -2**31, 2**31 - 1,
                 2**32 - 1, -129, 128, 255, 256, 65536, 1000, -1000, 2**53,
                 2**53 + 1]
DOUBLES = ["0.0", "-0.0", "1.0", "-1.0", "0.5", "2.5", "nan", "inf", "-inf",
           "1e300", "-1e300", "2**63", "-2**63", "2**53+1", "3.5e38",
           "5e-324"]
STRINGS = ["", "a", "b", "x", "key", "\u00e9", b"\xff\xfe", "a'b\"c",
           "\n\t\\", "\0", "1", "pickle", "z" * 100, "jobs", "_private",
           "a b"]
CODECS = ["", "pickle", "json"]
TYPECODES = ["b", "B", "h", "H", "i", "I", "l", "L", "q", "Q", "f", "d", "u",
             "c", "x", ""]
ATTRIBUTES = ["x", "y", "count", "_private", "1a", "", "\u00e9", "a b",
              "n" * 300]
LABELS = ["", "worker", "w2"]
NAMES = {**{chr(ord("a") + i): i for i in range(8)}, "": 8,
         "anon": 9, "anon2": 10, "anon3": 11, "bad name": 12, "long": 13,
         "_anon/none": 14, "a/b": 15}
NO_ONE, BAD_SESSION = 0, 4
UNSET, ZERO, NEGATIVE, LONG = range(4)


def Int(v):
    if -100 <= v < 100:
        return bytes([v + 100])
    if v in BOUNDARY_INTS:
        return bytes([200 + BOUNDARY_INTS.index(v)])
    return bytes([255]) + struct.pack("<q", v)


# LANE + slot: that client's session, its calls over the lane.
LANE = 10


def who(slot):
    """slot 0-2 is that client's session over gRPC, LANE + 0-2 over the
    lane; NO_ONE / BAD_SESSION otherwise."""
    if slot >= LANE:
        return bytes([(slot - LANE + 2) % 3 + 5])
    return bytes([slot + 1]) if slot in (0, 1, 2) else bytes([slot])


def name(n):
    return bytes([NAMES[n]])


def idx(table, item):
    return bytes([table.index(item)])


class V:
    """engine_fuzz's Value encodings; each returns bytes."""

    null = bytes([0])

    @staticmethod
    def bool(b):
        return bytes([1, int(b)])

    @staticmethod
    def int(i):
        return bytes([2]) + Int(i)

    @staticmethod
    def double(d):
        return bytes([3]) + idx(DOUBLES, d)

    @staticmethod
    def str(s):
        return bytes([4]) + idx(STRINGS, s)

    @staticmethod
    def bytes(s):
        return bytes([5]) + idx(STRINGS, s)

    @staticmethod
    def list(*items):
        return bytes([6, len(items)]) + b"".join(items)

    @staticmethod
    def tuple(*items):
        return bytes([7, len(items)]) + b"".join(items)

    @staticmethod
    def map(*entries):
        return bytes([8, len(entries)]) + b"".join(k + v for k, v in entries)

    @staticmethod
    def ref(n, type_):
        return bytes([9]) + name(n) + bytes([type_])

    @staticmethod
    def blob(codec, data):
        return bytes([10]) + idx(CODECS, codec) + idx(STRINGS, data)

    @staticmethod
    def deep(n):
        return bytes([11, n])

    @staticmethod
    def big(k):
        return bytes([12, k])

    @staticmethod
    def text(raw):
        return bytes([13, len(raw)]) + raw


def index(i):
    return bytes([1]) + Int(i)


def slice_(start=None, stop=None, step=None):
    flags = (2 if start is not None else 0) | (4 if stop is not None else 0) \
        | (8 if step is not None else 0)
    out = bytes([flags])
    for part in (start, stop, step):
        if part is not None:
            out += Int(part)
    return out


def op(code, *args):
    return bytes([OP[code]]) + b"".join(args)


# Session ops always read a slot byte first (SessionOp).
def hello(slot, resume=False, label=""):
    return op("SessionOpen", bytes([slot, int(resume)]), idx(LABELS, label))


def goodbye(slot):
    return op("SessionGoodbye", bytes([slot]))


def keepalive(slot):
    return op("SessionKeepalive", bytes([slot]))


def release(slot, *names):
    return op("SessionRelease", bytes([slot, len(names)]),
              *[name(n) for n in names])


def expire():
    return op("SessionsExpire", bytes([0]))


def open_(w, n, type_, init=b"\x00", typecode=None, condition_lock=None,
          semaphore_value=None, parties=None, maxsize=None):
    """init: b"\\x00" none, or dict_init / list_init / value_init /
    array_init below."""
    fields = 0
    tail = b""
    if typecode is not None:
        fields |= 1
        tail += idx(TYPECODES, typecode)
    if condition_lock is not None:
        fields |= 2
        tail += name(condition_lock)
    if semaphore_value is not None:
        fields |= 4
        tail += Int(semaphore_value)
    if parties is not None:
        fields |= 8
        tail += Int(parties)
    if maxsize is not None:
        fields |= 16
        tail += Int(maxsize)
    return op("Open", who(w), name(n), bytes([type_]), init, bytes([fields]),
              tail)


def dict_init(*entries):
    return bytes([1, len(entries)]) + b"".join(k + v for k, v in entries)


def list_init(*items):
    return bytes([2, len(items)]) + b"".join(items)


def value_init(v):
    return bytes([3]) + v


def array_init(typecode, *items):
    return bytes([4]) + idx(TYPECODES, typecode) + bytes([len(items)]) + \
        b"".join(items)


def on(code, w, n, *args):
    """An op on object `n` from `w`."""
    return op(code, who(w), name(n), *args)


def acquire(w, n, blocking=True, timeout=UNSET, thread=0, label=""):
    return on("LockAcquire", w, n, bytes([int(blocking), timeout, thread]),
              idx(LABELS, label))


def lock_release(w, n, thread=0):
    return on("LockRelease", w, n, bytes([thread]))


def cancel(k):
    return op("Cancel", bytes([k]))


def retire():
    return op("Retire")


ENGINE_SEEDS = {
    "dict-basics": [
        open_(NO_ONE, "a", DICT, dict_init((V.str("x"), V.int(1)))),
        on("DictSet", NO_ONE, "a", V.str("key"), V.int(1)),
        on("DictGet", NO_ONE, "a", V.str("key"), b"\x00"),
        on("DictGet", NO_ONE, "a", V.str("b"), b"\x01", V.null),
        on("DictContains", NO_ONE, "a", V.double("1.0")),
        on("DictLen", NO_ONE, "a"),
        on("DictItems", NO_ONE, "a", b"\x00", Int(0), Int(1)),
        on("DictSetDefault", NO_ONE, "a", V.int(1), V.str("1")),
        on("DictUpdate", NO_ONE, "a", bytes([3]), V.bool(True), V.int(2),
           V.tuple(V.int(1), V.str("a")), V.list(), V.str("\u00e9"),
           V.bytes("\u00e9")),
        on("DictIncrement", NO_ONE, "a", V.str("key"), b"\x01",
           V.double("0.5")),
        on("DictIncrement", NO_ONE, "a", V.str("b"), b"\x00"),
        on("DictCompareAndSet", NO_ONE, "a", V.str("b"), b"\x01", V.int(1),
           V.int(5)),
        on("DictCompareAndSet", NO_ONE, "a", V.str("jobs"), b"\x00",
           V.int(0)),
        on("DictGetAndSet", NO_ONE, "a", V.str("b"), V.int(6)),
        on("DictPop", NO_ONE, "a", V.str("b"), b"\x00"),
        on("DictPop", NO_ONE, "a", V.str("b"), b"\x01", V.int(-1)),
        on("DictPopItem", NO_ONE, "a"),
        on("DictDelete", NO_ONE, "a", V.str("x")),
        on("DictClear", NO_ONE, "a"),
        on("DictPopItem", NO_ONE, "a"),
        op("Delete", who(NO_ONE), name("a")),
    ],
    "dict-bad-keys": [
        open_(NO_ONE, "b", DICT),
        on("DictSet", NO_ONE, "b", V.list(V.int(1)), V.int(1)),
        on("DictSet", NO_ONE, "b", V.double("nan"), V.int(1)),
        on("DictSet", NO_ONE, "b", V.map(), V.int(1)),
        on("DictSet", NO_ONE, "b", V.ref("a", DICT), V.int(1)),
        on("DictGet", NO_ONE, "b", V.tuple(V.list()), b"\x00"),
        on("DictIncrement", NO_ONE, "b", V.str("a"), b"\x01", V.str("x")),
        on("DictSet", NO_ONE, "b", V.str("1"), V.int(2**63 - 1)),
        on("DictIncrement", NO_ONE, "b", V.str("1"), b"\x00"),
        on("DictSet", NO_ONE, "b", V.str("key"), V.deep(40)),
        on("DictSet", NO_ONE, "b", V.str("pickle"), V.big(200)),
    ],
    "dict-items-paging": [
        open_(NO_ONE, "c", DICT, dict_init(
            (V.int(1), V.int(1)), (V.int(2), V.int(2)),
            (V.int(3), V.int(3)), (V.int(4), V.int(4)))),
        on("DictItems", NO_ONE, "c", b"\x00", Int(0), Int(2)),
        on("DictItems", NO_ONE, "c", b"\x02", Int(2), Int(2)),
        on("DictDelete", NO_ONE, "c", V.int(1)),
        on("DictItems", NO_ONE, "c", b"\x03", Int(2), Int(2)),
        on("DictItems", NO_ONE, "c", b"\x01", Int(-5), Int(-1)),
        on("DictItems", NO_ONE, "c", b"\x00", Int(2**63 - 1), Int(0)),
    ],
    "list-basics": [
        open_(NO_ONE, "b", LIST, list_init(V.int(3), V.int(1), V.int(2))),
        on("ListAppend", NO_ONE, "b", V.str("a")),
        on("ListExtend", NO_ONE, "b", bytes([2]), V.double("0.5"),
           V.bool(False)),
        on("ListInsert", NO_ONE, "b", Int(-100), V.null),
        on("ListGet", NO_ONE, "b", index(-1)),
        on("ListGet", NO_ONE, "b", slice_(1, None, 2)),
        on("ListSet", NO_ONE, "b", index(0), V.int(0)),
        on("ListSet", NO_ONE, "b", slice_(0, 2), V.list(V.int(7))),
        on("ListSet", NO_ONE, "b", slice_(None, None, -2),
           V.tuple(V.int(1), V.int(2), V.int(3))),
        on("ListIndex", NO_ONE, "b", V.int(1), b"\x03", Int(-3), Int(100)),
        on("ListCount", NO_ONE, "b", V.bool(True)),
        on("ListContains", NO_ONE, "b", V.str("a")),
        on("ListRemove", NO_ONE, "b", V.str("a")),
        on("ListRemove", NO_ONE, "b", V.str("a")),
        on("ListSort", NO_ONE, "b", b"\x00"),
        on("ListPop", NO_ONE, "b", b"\x00"),
        on("ListPop", NO_ONE, "b", b"\x01", Int(0)),
        on("ListSort", NO_ONE, "b", b"\x01"),
        on("ListReverse", NO_ONE, "b"),
        on("ListDelete", NO_ONE, "b", slice_(None, None, 2)),
        on("ListRepeat", NO_ONE, "b", Int(3)),
        on("ListDelete", NO_ONE, "b", index(1)),
        on("ListLen", NO_ONE, "b"),
        on("ListClear", NO_ONE, "b"),
        on("ListPop", NO_ONE, "b", b"\x00"),
    ],
    "list-slices-boundaries": [
        open_(NO_ONE, "b", LIST, list_init(*[V.int(i) for i in range(4)])),
        on("ListGet", NO_ONE, "b", slice_(None, None, -2**63)),
        on("ListGet", NO_ONE, "b", slice_(2**63 - 1, -2**63, -1)),
        on("ListGet", NO_ONE, "b", slice_(-2**63, 2**63 - 1, 2**63 - 1)),
        on("ListGet", NO_ONE, "b", slice_(None, None, 0)),
        on("ListDelete", NO_ONE, "b", slice_(-2**63, None, -2**63)),
        on("ListSet", NO_ONE, "b", slice_(2**63 - 1, None),
           V.list(V.int(9), V.int(9))),
        on("ListSet", NO_ONE, "b", slice_(1, 3, 1), V.int(1)),
        on("ListInsert", NO_ONE, "b", Int(2**63 - 1), V.int(5)),
        on("ListPop", NO_ONE, "b", b"\x01", Int(-2**63)),
        on("ListRepeat", NO_ONE, "b", Int(2**63 - 1)),
        on("ListRepeat", NO_ONE, "b", Int(64)),
        on("ListRepeat", NO_ONE, "b", Int(-1)),
    ],
    "list-sort-mixed": [
        open_(NO_ONE, "b", LIST, list_init(V.int(1), V.str("a"),
                                           V.double("nan"),
                                           V.tuple(V.int(1)))),
        on("ListSort", NO_ONE, "b", b"\x00"),
        on("ListSet", NO_ONE, "b", index(1), V.double("-inf")),
        on("ListSet", NO_ONE, "b", index(3), V.int(0)),
        on("ListSort", NO_ONE, "b", b"\x01"),
        on("ListIndex", NO_ONE, "b", V.double("nan"), b"\x00"),
    ],
    "namespace": [
        open_(NO_ONE, "c", NAMESPACE, dict_init((V.str("x"), V.int(1)))),
        on("NamespaceSet", NO_ONE, "c", idx(ATTRIBUTES, "count"), V.int(1)),
        on("NamespaceGet", NO_ONE, "c", idx(ATTRIBUTES, "count")),
        on("NamespaceSet", NO_ONE, "c", idx(ATTRIBUTES, "_private"),
           V.null),
        on("NamespaceSet", NO_ONE, "c", idx(ATTRIBUTES, "\u00e9"), V.null),
        on("NamespaceItems", NO_ONE, "c"),
        on("NamespaceDelete", NO_ONE, "c", idx(ATTRIBUTES, "x")),
        on("NamespaceGet", NO_ONE, "c", idx(ATTRIBUTES, "x")),
        open_(NO_ONE, "d", NAMESPACE, dict_init((V.int(1), V.int(1)))),
    ],
    "value-cell": [
        open_(NO_ONE, "d", VALUE, value_init(V.int(1)), typecode="i"),
        on("ValueIncrement", NO_ONE, "d", b"\x00"),
        on("ValueIncrement", NO_ONE, "d", b"\x01", V.double("0.5")),
        on("ValueCompareAndSet", NO_ONE, "d", V.double("2.5"), V.str("x")),
        on("ValueGetAndSet", NO_ONE, "d", V.int(2**63 - 1)),
        on("ValueIncrement", NO_ONE, "d", b"\x00"),
        on("ValueSet", NO_ONE, "d", V.map((V.str("a"), V.list()))),
        on("ValueGet", NO_ONE, "d"),
    ],
    "array": [
        open_(NO_ONE, "e", ARRAY, array_init("i", V.int(1), V.int(2),
                                             V.bool(True))),
        on("ArrayLen", NO_ONE, "e"),
        on("ArrayGet", NO_ONE, "e", index(-1)),
        on("ArraySet", NO_ONE, "e", index(0), V.int(2**31 - 1)),
        on("ArraySet", NO_ONE, "e", index(0), V.int(2**31)),
        on("ArraySet", NO_ONE, "e", slice_(None, None, -1),
           V.list(V.int(1), V.int(2), V.int(3))),
        on("ArraySet", NO_ONE, "e", slice_(0, 1), V.list()),
        on("ArrayGet", NO_ONE, "e", slice_(None, None, 2)),
        open_(NO_ONE, "f", ARRAY, array_init("f", V.double("3.5e38"),
                                             V.double("nan"))),
        open_(NO_ONE, "g", ARRAY, array_init("u", V.str("\u00e9"))),
        open_(NO_ONE, "h", ARRAY, array_init("x")),
        open_(NO_ONE, "h", ARRAY),
    ],
    "lock-handoff": [
        hello(0), hello(1, label="worker"),
        open_(0, "a", LOCK),
        acquire(0, "a"),
        acquire(1, "a"),
        on("LockState", NO_ONE, "a"),
        lock_release(0, "a"),
        lock_release(1, "a"),
        lock_release(1, "a"),
        acquire(0, "a", blocking=False),
        acquire(1, "a", timeout=ZERO),
        acquire(1, "a", timeout=NEGATIVE),
        acquire(1, "a", blocking=False, timeout=LONG),
        retire(),
    ],
    "lock-owner-died": [
        hello(0), hello(1),
        open_(0, "a", LOCK),
        acquire(0, "a"),
        acquire(1, "a", timeout=LONG),
        goodbye(0),
        on("LockState", NO_ONE, "a"),
        acquire(0, "a"),
        hello(0),
        acquire(0, "a"),
        goodbye(1),
    ],
    "rlock-reentry": [
        hello(0), hello(1),
        open_(0, "b", RLOCK),
        acquire(0, "b", thread=1),
        acquire(0, "b", thread=1),
        acquire(0, "b", thread=2),
        acquire(1, "b", thread=1),
        lock_release(0, "b", thread=2),
        lock_release(0, "b", thread=1),
        lock_release(0, "b", thread=1),
        lock_release(1, "b", thread=1),
        lock_release(1, "b", thread=1),
    ],
    "lock-grant-cancelled": [
        hello(0), hello(1),
        open_(0, "a", LOCK),
        acquire(0, "a"),
        acquire(1, "a"),
        lock_release(0, "a"),
        # The grant reached a client that is gone: rolled back.
        cancel(1),
        on("LockState", NO_ONE, "a"),
        acquire(0, "a"),
        acquire(1, "a"),
        cancel(3),
        lock_release(0, "a"),
    ],
    # Over the lane the client reads a cancelled call's grant and
    # releases it: cancelling changes nothing.
    "lock-lane-grant-cancelled": [
        hello(0), hello(1),
        open_(0, "a", LOCK),
        acquire(LANE + 0, "a"),
        acquire(LANE + 1, "a"),
        lock_release(LANE + 0, "a"),
        cancel(1),
        cancel(0),
        on("LockState", NO_ONE, "a"),
        # A zero timeout parks a condition wait; it times out at the end
        # of the op and takes the lock back.
        open_(0, "c", CONDITION, condition_lock="a"),
        on("ConditionWait", LANE + 1, "c", bytes([ZERO, 0])),
        lock_release(LANE + 1, "a"),
    ],
    "condition": [
        hello(0), hello(1),
        open_(0, "a", LOCK),
        open_(0, "c", CONDITION, condition_lock="a"),
        acquire(0, "a"),
        on("ConditionWait", 0, "c", bytes([UNSET, 0])),
        acquire(1, "a"),
        on("ConditionNotify", 1, "c", Int(1), b"\x00", b"\x00"),
        lock_release(1, "a"),
        lock_release(0, "a"),
        on("ConditionWait", 0, "c", bytes([UNSET, 0])),
        on("ConditionNotify", 0, "c", Int(0), b"\x01", b"\x00"),
        open_(0, "d", CONDITION),
        open_(0, "d", CONDITION, condition_lock="c"),
    ],
    "condition-waiter-cancelled": [
        hello(0), hello(1),
        open_(0, "b", RLOCK),
        open_(0, "c", CONDITION, condition_lock="b"),
        acquire(0, "b", thread=1),
        acquire(0, "b", thread=1),
        on("ConditionWait", 0, "c", bytes([LONG, 1])),
        acquire(1, "b"),
        on("ConditionNotify", 1, "c", Int(1), b"\x01", b"\x00"),
        cancel(2),
        lock_release(1, "b"),
        op("Delete", who(NO_ONE), name("c")),
        goodbye(0),
    ],
    "semaphore": [
        hello(0), hello(1),
        open_(0, "c", BOUNDED_SEMAPHORE, semaphore_value=2),
        on("SemaphoreAcquire", 0, "c", bytes([1, UNSET, 0])),
        on("SemaphoreAcquire", 0, "c", bytes([1, UNSET, 0])),
        on("SemaphoreAcquire", 1, "c", bytes([1, UNSET, 0])),
        on("SemaphoreState", NO_ONE, "c"),
        on("SemaphoreRelease", 0, "c", Int(1)),
        on("SemaphoreRelease", 1, "c", Int(2)),
        on("SemaphoreRelease", NO_ONE, "c", Int(0)),
        goodbye(1),
        on("SemaphoreState", NO_ONE, "c"),
        open_(0, "d", SEMAPHORE, semaphore_value=-1),
        open_(0, "d", SEMAPHORE, semaphore_value=0),
        on("SemaphoreRelease", NO_ONE, "d", Int(2**63 - 1)),
        on("SemaphoreRelease", NO_ONE, "d", Int(1)),
    ],
    "event": [
        hello(0), hello(1),
        open_(0, "e", EVENT),
        on("EventWait", 0, "e", bytes([UNSET, 0])),
        on("EventWait", 1, "e", bytes([ZERO, 0])),
        on("EventIsSet", NO_ONE, "e"),
        on("EventSet", NO_ONE, "e"),
        on("EventWait", 1, "e", bytes([LONG, 0])),
        on("EventClear", NO_ONE, "e"),
        on("EventWait", 1, "e", bytes([LONG, 0])),
        expire(),
    ],
    "barrier": [
        hello(0), hello(1), hello(2),
        open_(0, "f", BARRIER, parties=2),
        on("BarrierWait", 0, "f", bytes([UNSET, 0])),
        on("BarrierWait", 1, "f", bytes([UNSET, 0])),
        on("BarrierState", NO_ONE, "f"),
        on("BarrierWait", 2, "f", bytes([LONG, 0])),
        on("BarrierAbort", NO_ONE, "f"),
        on("BarrierWait", 0, "f", bytes([UNSET, 0])),
        on("BarrierReset", NO_ONE, "f"),
        on("BarrierWait", 0, "f", bytes([UNSET, 0])),
        cancel(4),
        open_(0, "g", BARRIER),
        open_(0, "g", BARRIER, parties=1),
        on("BarrierWait", 0, "g", bytes([UNSET, 0])),
    ],
    "queue": [
        hello(0), hello(1),
        open_(0, "g", QUEUE, maxsize=1),
        on("QueuePut", 0, "g", V.str("jobs"), bytes([1, UNSET])),
        on("QueuePut", 0, "g", V.int(2), bytes([1, UNSET])),
        on("QueuePut", 1, "g", V.int(3), bytes([0, UNSET])),
        on("QueueSize", NO_ONE, "g"),
        on("QueueGet", 1, "g", bytes([1, UNSET])),
        on("QueueTaskDone", NO_ONE, "g"),
        on("QueueJoin", 1, "g", bytes([ZERO])),
        on("QueueJoin", 1, "g", bytes([LONG])),
        on("QueueGet", 1, "g", bytes([1, ZERO])),
        on("QueueTaskDone", NO_ONE, "g"),
        on("QueueTaskDone", NO_ONE, "g"),
        on("QueueState", NO_ONE, "g"),
    ],
    "queue-handoff-cancelled": [
        hello(0), hello(1),
        open_(0, "h", JOINABLE_QUEUE),
        on("QueueGet", 1, "h", bytes([1, UNSET])),
        on("QueueGet", 1, "h", bytes([1, LONG])),
        on("QueuePut", 0, "h", V.str("jobs"), bytes([1, UNSET])),
        # The item reached a getter that is gone: it goes back.
        cancel(0),
        on("QueueSize", NO_ONE, "h"),
        cancel(1),
        on("QueueGet", 0, "h", bytes([0, UNSET])),
    ],
    "anonymous-refs": [
        hello(0), hello(1),
        open_(0, "", DICT),
        open_(0, "", LIST),
        open_(NO_ONE, "a", DICT),
        # "anon" is the newest anonymous object (the list), "anon2" the
        # one before (the dict).
        on("DictSet", NO_ONE, "a", V.str("a"), V.ref("anon", LIST)),
        on("DictSet", NO_ONE, "a", V.str("b"), V.ref("anon2", DICT)),
        on("DictSet", NO_ONE, "a", V.str("x"), V.ref("anon", DICT)),
        on("DictGet", 1, "a", V.str("a"), b"\x00"),
        release(0, "anon", "anon2"),
        op("List", who(NO_ONE), b"\x00\x01"),
        on("DictDelete", NO_ONE, "a", V.str("a")),
        goodbye(0),
        op("Describe", who(NO_ONE), name("anon")),
        goodbye(1),
        open_(0, "anon", DICT),
        open_(0, "_anon/none", DICT),
    ],
    "anonymous-lock-condition": [
        hello(0),
        open_(0, "", LOCK),
        open_(0, "c", CONDITION, condition_lock="anon"),
        release(0, "anon"),
        acquire(0, "anon"),
        op("Delete", who(NO_ONE), name("c")),
        op("List", who(NO_ONE), b"\x00\x01"),
        goodbye(0),
    ],
    "delete-with-waiters": [
        hello(0), hello(1),
        open_(0, "a", LOCK),
        acquire(0, "a"),
        acquire(1, "a"),
        open_(0, "b", QUEUE),
        on("QueueGet", 1, "b", bytes([1, UNSET])),
        op("Delete", who(NO_ONE), name("a")),
        op("Delete", who(NO_ONE), name("b")),
        lock_release(0, "a"),
        open_(0, "a", DICT),
    ],
    "sessions": [
        hello(0), hello(0, resume=True), hello(1), hello(2), hello(0),
        hello(1),
        keepalive(2),
        acquire(2, "a"),
        expire(),
        keepalive(2),
        hello(2, resume=True),
        op("Open", who(BAD_SESSION), name("a"), bytes([DICT, 0, 0])),
        open_(NO_ONE, "", DICT),
    ],
    "objects": [
        open_(NO_ONE, "a", DICT),
        open_(NO_ONE, "a", LOCK),
        open_(NO_ONE, "a/b", LIST),
        open_(NO_ONE, "bad name", DICT),
        open_(NO_ONE, "long", DICT),
        open_(NO_ONE, "b", 0),
        open_(NO_ONE, "b", 15),
        open_(NO_ONE, "b", LIST, dict_init()),
        open_(NO_ONE, "b", DICT, maxsize=3),
        op("List", who(NO_ONE), b"\x01" + name("a") + b"\x00"),
        op("Describe", who(NO_ONE), name("a/b")),
        op("Delete", who(NO_ONE), name("a")),
        op("Delete", who(NO_ONE), name("a")),
        op("Describe", who(NO_ONE), name("a")),
    ],
    # Past --max_objects (48 in the harness).
    "max-objects": [hello(0)] + [open_(0, "", DICT)] * 50,
}


# --- lane streams (lane_frame_fuzz; api/LANE.md) ---

PREFACE = b"SHLN"
HELLO, WELCOME, REQUEST, RESPONSE, ERROR, CANCEL, PING, PONG, RELEASE, \
    GOODBYE, EVENT = range(1, 12)
# Lane method ids (the lane_method options; api/LANE.md, "Method ids").
M_OPEN, M_DICT_GET, M_DICT_SET, M_LOCK_ACQUIRE, M_LOCK_RELEASE = 1, 16, 17, \
    80, 81
M_QUEUE_GET = 105
M_WATCH = 112


def frame(kind, request_id=0, method=0, body=b"", flags=0, length=None):
    """One frame: the 12-byte header (length defaults to the body's)."""
    n = len(body) if length is None else length
    return struct.pack("<IIHBB", n, request_id, method, kind, flags) + body


def text(number, value):
    """A string (or bytes) field."""
    return field(number, 2,
                 value.encode() if isinstance(value, str) else value)


def lane_hello(version=1, label="fuzz", resume="", join=""):
    body = field(1, 0, version) if version else b""
    body += text(4, label) if label else b""
    body += text(3, resume) if resume else b""
    body += text(5, join) if join else b""
    return frame(HELLO, body=body)


def request(request_id, method, body):
    return frame(REQUEST, request_id, method, body)


def open_body(n, type_):
    return text(1, n) + field(2, 0, type_)


def acquire_body(n, thread=0, timeout_s=None):
    body = text(1, n) + field(2, 0, 1)  # blocking
    if timeout_s is not None:  # google.protobuf.Duration seconds
        body += field(3, 2, field(1, 0, timeout_s) if timeout_s else b"")
    return body + (field(4, 0, thread) if thread else b"")


def lane(params=0, chunks=0, *frames):
    """lane_frame_fuzz's input: parameters, chunking, the stream."""
    return bytes([params, chunks]) + b"".join(frames)


MAX_16, NO_PREFACE = 2, 4

LANE_SEEDS = {
    "hello": lane(0, 0, PREFACE, lane_hello()),
    "dict-requests": lane(0, 5, PREFACE, lane_hello(label=""),
                          request(1, M_OPEN, open_body("a", DICT)),
                          request(2, M_DICT_SET, text(1, "a") + field(
                              2, 2, W.str("k")) + field(3, 2, W.int(1))),
                          request(3, M_DICT_GET, text(1, "a") + field(
                              2, 2, W.str("k"))),
                          frame(PING, 4), frame(GOODBYE)),
    "lock-park-cancel": lane(0, 3, PREFACE, lane_hello(),
                             request(1, M_OPEN, open_body("l", LOCK)),
                             request(2, M_LOCK_ACQUIRE, acquire_body("l")),
                             request(3, M_LOCK_ACQUIRE,
                                     acquire_body("l", thread=1)),
                             request(4, M_LOCK_ACQUIRE,
                                     acquire_body("l", thread=2, timeout_s=0)),
                             frame(CANCEL, 3), frame(CANCEL, 99),
                             request(5, M_LOCK_RELEASE, text(1, "l")),
                             frame(RELEASE, body=text(1, "_anon/lock/1"))),
    "queue-parked-at-close": lane(0, 1, PREFACE, lane_hello(),
                                  request(1, M_OPEN, open_body("q", QUEUE)),
                                  request(2, M_QUEUE_GET, text(1, "q") + field(
                                      2, 0, 1)),
                                  request(2, M_QUEUE_GET, text(1, "q") + field(
                                      2, 0, 1))),
    "many-pings": lane(0, 200, PREFACE, lane_hello(),
                       *[frame(PING, i) for i in range(400)]),
    "resume-unknown": lane(0, 0, PREFACE,
                           lane_hello(resume="00000000000000ff")),
    "join-unknown": lane(0, 0, PREFACE, lane_hello(join="0123456789abcdef")),
    "resume-and-join": lane(0, 0, PREFACE,
                            lane_hello(resume="1", join="2")),
    "bad-version": lane(0, 0, PREFACE, lane_hello(version=2)),
    "hello-twice": lane(0, 2, PREFACE, lane_hello(), lane_hello()),
    "request-before-hello": lane(0, 0, PREFACE,
                                 request(1, M_OPEN, open_body("a", DICT))),
    "unknown-method": lane(0, 0, PREFACE, lane_hello(),
                           request(1, 999, b""), request(2, 0, b""),
                           frame(PING, 3)),
    "bad-body": lane(0, 0, PREFACE, lane_hello(),
                     request(1, M_DICT_GET, b"\xff\xff\xff"),
                     request(2, M_LOCK_ACQUIRE, b"\x0a\x05ab"),
                     frame(RELEASE, body=b"\x0a\x09x")),
    "server-frames-from-client": lane(0, 0, PREFACE, lane_hello(),
                                      frame(PONG, 1)),
    "bad-preface-http2": lane(0, 0, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    "bad-preface-partial": lane(0, 1, b"SHX"),
    "preface-only": lane(0, 1, PREFACE),
    "kind-zero": lane(0, 0, PREFACE, frame(0, 7)),
    "kind-unknown": lane(0, 0, PREFACE, lane_hello(), frame(12, 8)),
    "flags": lane(0, 0, PREFACE, frame(HELLO, flags=1)),
    "too-long": lane(MAX_16, 4, PREFACE, lane_hello(label=""),
                     request(5, M_OPEN, open_body("x" * 40, DICT))),
    "huge-length": lane(0, 0, PREFACE, lane_hello(),
                        frame(REQUEST, 9, M_OPEN, length=0xFFFFFFFF)),
    "truncated-header": lane(0, 0, PREFACE, lane_hello(), b"\x05\x00\x00"),
    "truncated-body": lane(0, 7, PREFACE, lane_hello(),
                           frame(REQUEST, 1, M_OPEN, b"\x0a", length=50)),
    "client-side": lane(NO_PREFACE, 6,
                        frame(WELCOME, body=text(1, "00000000000000ff")),
                        frame(RESPONSE, 1, body=field(1, 0, 1)),
                        frame(ERROR, 2, body=field(1, 0, 5)),
                        frame(PONG, 3), frame(EVENT)),
}

# lane_session_fuzz reads the same format, bit 2 of byte 0 meaning a Unix
# socket; these reach its parked calls.
UNIX = 4
SESSION_SEEDS = {
    "lock-grant-in-feed": lane(0, 0, PREFACE, lane_hello(),
                               request(1, M_OPEN, open_body("l", LOCK)),
                               request(2, M_LOCK_ACQUIRE, acquire_body("l")),
                               request(3, M_LOCK_ACQUIRE,
                                       acquire_body("l", thread=1)),
                               request(4, M_LOCK_RELEASE, text(1, "l"))),
    "unix-parked-at-close": lane(UNIX, 9, PREFACE, lane_hello(),
                                 request(1, M_OPEN, open_body("l", LOCK)),
                                 request(2, M_LOCK_ACQUIRE, acquire_body("l")),
                                 request(3, M_LOCK_ACQUIRE,
                                         acquire_body("l", thread=1,
                                                      timeout_s=3600))),
    "unix-goodbye": lane(UNIX, 0, PREFACE, lane_hello(),
                         request(1, M_OPEN, open_body("q", QUEUE)),
                         request(2, M_QUEUE_GET, text(1, "q") + field(
                             2, 0, 1)),
                         frame(GOODBYE), frame(PING, 5)),
    "duplicate-request-id": lane(0, 0, PREFACE, lane_hello(),
                                 request(1, M_OPEN, open_body("q", QUEUE)),
                                 request(7, M_QUEUE_GET, text(1, "q") + field(
                                     2, 0, 1)),
                                 request(7, M_QUEUE_GET, text(1, "q") + field(
                                     2, 0, 1)),
                                 frame(CANCEL, 7)),
    # Watches: EVENT frames with the Watch call's id until an ERROR ends it.
    "watch-dict-and-prefix": lane(0, 5, PREFACE, lane_hello(),
                                  request(1, M_OPEN, open_body("a", DICT)),
                                  request(2, M_WATCH,
                                          text(1, "a") + field(4, 0, 1)),
                                  request(3, M_WATCH, text(2, "")),
                                  request(4, M_DICT_SET, text(1, "a") + field(
                                      2, 2, W.str("k")) + field(
                                      3, 2, W.int(1))),
                                  request(5, M_OPEN, open_body("b", DICT)),
                                  frame(CANCEL, 2),
                                  request(6, M_DICT_SET, text(1, "a") + field(
                                      2, 2, W.str("k")) + field(
                                      3, 2, W.int(2)))),
    "watch-bad": lane(UNIX, 0, PREFACE, lane_hello(),
                      request(1, M_WATCH, text(1, "missing")),
                      request(2, M_WATCH, text(1, "bad name!")),
                      request(3, M_OPEN, open_body("a", DICT)),
                      request(4, M_WATCH, text(1, "a") + field(3, 0, 999)),
                      request(5, M_WATCH, text(1, "a") + field(3, 0, 0) +
                              field(4, 0, 1)),
                      request(6, M_WATCH, b"\xff\xff"),
                      request(7, M_WATCH, text(1, "a")),
                      request(7, M_WATCH, text(1, "a")),
                      frame(REQUEST, 8, M_WATCH, b"\0" * 16 + text(1, "a"),
                            flags=1)),
}


def main():
    for target in ("value_decoder", "engine", "lane_frame", "lane_session"):
        os.makedirs(os.path.join(HERE, "corpus", target), exist_ok=True)
    out = {}
    for seed, value in DECODER_SEEDS.items():
        out[("value_decoder", seed)] = limits() + value
    for seed, (head, value) in DECODER_LIMITED.items():
        out[("value_decoder", seed)] = head + value
    for seed, ops in ENGINE_SEEDS.items():
        out[("engine", seed)] = b"".join(ops)
    for seed, data in LANE_SEEDS.items():
        out[("lane_frame", seed)] = data
    for seed, data in {**LANE_SEEDS, **SESSION_SEEDS}.items():
        out[("lane_session", seed)] = data
    for (target, seed), data in sorted(out.items()):
        with open(os.path.join(HERE, "corpus", target, seed), "wb") as f:
            f.write(data)
    print(f"wrote {len(out)} seeds")


if __name__ == "__main__":
    main()
