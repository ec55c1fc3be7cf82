"""The cells of the benchmark tables (scripts/bench-egg.sh, scripts/bench-project.sh).

A measurement is "MEDIAN MIN" in seconds (timeit.py's output) or FAILED.
"""


def cell(v, unit="s"):
    """The median with the min in brackets, in seconds ("s") or milliseconds ("ms")."""
    if v == "FAILED":
        return "FAILED"
    med, low = map(float, v.split())
    if unit == "ms":
        return f"{med * 1000:.1f} ms [{low * 1000:.1f}]"
    return f"{med:.3f} s [{low:.3f}]"


def ratio(v, base, digits=1):
    """v's median over base's, as "3.0x" (`digits` decimals); "-" when either failed."""
    if "FAILED" in (v, base):
        return "-"
    return f"{float(v.split()[0]) / float(base.split()[0]):.{digits}f}x"
