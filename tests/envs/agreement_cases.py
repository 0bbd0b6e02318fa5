"""Graded cases for the GEM-agreement tests: real rows plus hand-picked tricky inputs, built in code."""

from __future__ import annotations

from tests.fixtures.datasets import gsm8k_rows, handwritten_code_rows, math500_rows, nq_rows

MATH_TRICKY: list[tuple[str, object]] = [
    ("\\boxed{72}", "72"), ("\\boxed{72.0}", "72"), ("\\boxed{\\$72}", "72"), ("\\boxed{1,000}", "1000"),
    ("\\boxed{\\frac{1}{2}}", "0.5"), ("\\boxed{0.5}", "\\frac{1}{2}"), ("\\boxed{1/2}", "\\frac12"),
    ("\\boxed{\\dfrac{3}{4}}", "\\frac{3}{4}"), ("\\boxed{2/4}", "\\frac{1}{2}"), ("\\boxed{x=5}", "5"),
    ("\\boxed{(1,2)}", "(1, 2)"), ("\\boxed{18 dollars}", "18"), ("\\boxed{18 \\text{ dollars}}", "18"),
    ("\\boxed{5\\text{ cm}}", "5"), ("\\boxed{90^\\circ}", "90"), ("\\boxed{50\\%}", "50"),
    ("\\fbox{5}", "5"), ("\\boxed 5", "5"), ("\\boxed{5} then \\boxed{6}", "5"), ("\\boxed{5} then \\boxed{6}", "6"),
    ("The answer is 72.", "72"), ("", "72"), ("  \\boxed{  42  }  ", "42"), ("\\boxed{\\sqrt{8}}", "2\\sqrt{2}"),
    ("\\boxed{\\pi/2}", "\\frac{\\pi}{2}"), ("\\boxed{x^2+2x+1}", "(x+1)^2"), ("\\boxed{[0, 1)}", "[0,1)"),
    ("\\boxed{(0,1]}", "[0,1)"), ("\\boxed{-3}", "-3"), ("\\boxed{3}", "-3"), ("\\boxed{1e3}", "1000"),
    ("\\boxed{10^3}", "1000"), ("\\boxed{\\text{(A)}}", "A"), ("\\boxed{A}", "\\text{(A)}"), ("\\boxed{{5}}", "5"),
    ("\\boxed{\\frac{1}{2}", "0.5"), ("\\boxed{5}\n\n", 5), ("\\boxed{72}", 72.0), ("\\boxed{6}", ["5", "6"]),
    ("\\boxed{7}", ["5", "6"]), ("\\boxed{0.333}", "\\frac{1}{3}"), ("\\boxed{3.14}", "\\pi"),
    ("$\\boxed{\\{1,2,3,4\\}}$", "\\{1,3\\} \\cup \\{2,4\\}"), ("\\boxed{${1,2,3,4}$}", "${1,3} \\cup {2,4}$"),
    ("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\boxed{\\infty}", "\\infty"), ("\\boxed{-\\infty}", "\\infty"), ("\\boxed{ \\frac{\\sqrt{3}}{2} }", "\\frac{\\sqrt3}{2}"),
    ("\\boxed{3\\sqrt{2}}", "\\sqrt{18}"), ("\\boxed{1.5}", "\\frac{3}{2}"), ("\\boxed{1\\frac{1}{2}}", "\\frac{3}{2}"),
    ("\\boxed{\\text{Monday}}", "Monday"), ("\\boxed{monday}", "\\text{Monday}"), ("\\boxed{y = 2x + 3}", "2x+3"),
    ("\\boxed{12,\\!000}", "12000"), ("\\boxed{0}", "0"), ("\\boxed{}", "0"), ("\\boxed{5}", "\\boxed{5}"),
]


def math_cases() -> list[tuple[str, object]]:
    cases = list(MATH_TRICKY)
    rows = math500_rows(30)
    for i, r in enumerate(rows):
        other = rows[(i + 1) % len(rows)]["answer"]
        cases += [
            (f"The final answer is $\\boxed{{{r['answer']}}}$.", r["answer"]),
            (f"So the result is \\boxed{{{other}}}", r["answer"]),
            (f"The answer is {r['answer']}", r["answer"]),
            (r["solution"], r["answer"]),
        ]
    for r in gsm8k_rows("test", 15):
        gt = r["answer"]
        cases += [(f"\\boxed{{{gt}}}", gt), (f"\\boxed{{{gt}.00}}", gt), (f"\\boxed{{\\${gt}}}", gt),
                  (f"\\boxed{{{int(gt.replace(',', '')) + 1}}}", gt), (r["solution"], gt)]
    return cases


def qa_cases() -> list[tuple[str, list[str], str]]:
    """(response, aliases, extract mode)."""
    rows = nq_rows("question", 30, 40)
    cases = []
    for i, r in enumerate(rows):
        aliases, alias = r["answer"], r["answer"][0]
        wrong = rows[(i + 1) % len(rows)]["answer"][0]
        cases += [
            (f"<think>Let me recall.</think> <answer>{alias}</answer>", aliases, "tag"),
            (f"<answer>  The {alias.upper()}.\n</answer>", aliases, "tag"),
            (f"<answer>{wrong}</answer>", aliases, "tag"),
            (f"The answer is {alias}.", aliases, "tag"),
            (f"<answer>{wrong}</answer> no wait <answer>{alias}</answer>", aliases, "tag"),
            (f"<answer>{alias}</answer> no wait <answer>{wrong}</answer>", aliases, "tag"),
            (f"\\boxed{{{alias}}}", aliases, "boxed"),
            (f"<answer>{alias}</answer>", aliases, "boxed"),
        ]
    return cases


CODE_SPECIAL: list[tuple[str, dict]] = [
    # timeout
    ("```python\nwhile True:\n    pass\n```", {"inputs": [""], "outputs": ["x"]}),
    # blocked by GEM's blocklist although correct
    ("```python\nimport subprocess\nprint(3)\n```", {"inputs": [""], "outputs": ["3"]}),
    ("```python\nimport sys\nprint(3)\nsys.exit(0)\n```", {"inputs": [""], "outputs": ["3"]}),
    # NameError, fixed by GEM's BASE_IMPORTS retry
    ("```python\nprint(int(sqrt(int(input()))))\n```", {"inputs": ["16\n"], "outputs": ["4"]}),
    ("```python\nprint(undefined_name)\n```", {"inputs": [""], "outputs": ["1"]}),
    # more than 12 tests: only the 12 longest inputs run, so the failing short one is never seen
    ("```python\nx = input()\nprint('ok' if len(x) > 1 else 'no')\n```",
     {"inputs": ["a"] + ["b" * (i + 2) for i in range(12)], "outputs": ["ok"] * 13}),
    ("```python\nx = input()\nprint('ok' if len(x) > 1 else 'no')\n```",
     {"inputs": ["a"] + ["b" * (i + 2) for i in range(11)], "outputs": ["ok"] * 12}),
    # the last fenced block is the program
    ("```python\nprint(1)\n```\nbetter:\n```python\nprint(2)\n```", {"inputs": [""], "outputs": ["2"]}),
    ("```python\nprint(2)\n```\nworse:\n```python\nprint(1)\n```", {"inputs": [""], "outputs": ["2"]}),
    # whitespace around the output is ignored, inside it is not
    ("```python\nprint('  5  ')\nprint()\n```", {"inputs": [""], "outputs": ["5\n"]}),
    ("```python\nprint('5 6')\n```", {"inputs": [""], "outputs": ["5  6"]}),
    # crash after correct output, wrong language fence, no fence, unterminated fence, placeholder
    ("```python\nprint(5)\nraise ValueError()\n```", {"inputs": [""], "outputs": ["5"]}),
    ("```cpp\n#include <cstdio>\nint main(){puts(\"5\");}\n```", {"inputs": [""], "outputs": ["5"]}),
    ("print(5)", {"inputs": [""], "outputs": ["5"]}),
    ("```python\nprint(5)\n", {"inputs": [""], "outputs": ["5"]}),
    ("```python\n...\n```", {"inputs": [""], "outputs": [""]}),
    ("```\nprint(input())\n```", {"inputs": ["hello\n"], "outputs": ["hello"]}),
    ("```py\nimport sys\nprint(sum(map(int, sys.stdin.read().split())))\n```", {"inputs": [["1 2", "3"]], "outputs": [["6"]]}),
]


def code_cases() -> list[tuple[str, dict]]:
    cases = list(CODE_SPECIAL)
    for row in handwritten_code_rows():
        program = row["solution"]
        cases.append((program, row["tests"]))
        cases.append((program.replace("\n```", "\nprint()\nprint('extra')\n```"), row["tests"]))
    return cases
