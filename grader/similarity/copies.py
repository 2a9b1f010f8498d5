"""Who copied: every pair of students of an assignment compared, unit by unit, by code and by behaviour.

For the instructor only: nothing here changes a score or reaches a student's page. "Alike" is a lead
for a person to read, never a verdict.

Evidence, for each pair:
- **structure** (fingerprints.py): each unit (a solution cell: here a function) as a set of normalised
  pieces, with what the release gives everyone taken away;
- **rarity**: a piece weighs by how few documents have it, log((N + 1) / df); a piece the master's
  answer has weighs a third of that (it is what the assignment asks for). A unit's likeness for a pair
  is the share of their rare weight they have in common, times how much rare weight that is;
- **judged against the class**: each unit's likeness becomes evidence by how few of the class's pairs
  are as alike (-log of that share, in nats), so that two honest answers converging on the usual code,
  as many pairs do, count little, and a rare construction shared counts a lot;
- **behaviour**: the outputs each student's functions gave on the grader's recorded calls (hidden-test
  inputs included: inputs nobody was shown), as digests. The same *wrong* output in two notebooks is
  far stronger evidence than shared right code, and a rare one more than a common mistake;
- **partial copies**: the evidence of the units and of the behaviour adds up, and each unit keeps its
  own score, so three copied functions in an otherwise own notebook stand out.

A pair's score turns its evidence into 0 to 1: what an ordinary pair of the class has counts for
nothing; half of the most one unit can give beyond that makes 1 - 1/e.

All pairs are compared through sparse matrix products over an index of pieces (scipy), not pair by
pair, so that a class of a thousand takes seconds.
"""
from __future__ import annotations

import ast
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.similarity import fingerprints

MASTER_WEIGHT = 1 / 3   # a piece of the master's answer is what the assignment forces
MASS_SHARE = 0.25       # sharing this share of a typical unit's rare weight makes mass 1 - 1/e (of 0.25, 0.5
#                         and 1, the best on the benchmark's classes and on three others)
REPORTED = 0.3          # pairs below this are left out of the report (each student's best is kept)
GROUP_AT = 0.6          # pairs at least this alike join students into groups
SMALL_CLASS = 12        # below this many students, how rare a piece of code is cannot be judged (see Comparison)


@dataclass
class Document:
    """A student's notebook or a known solution, unit by unit."""
    name: str
    known: bool = False                            # a known solution (earlier years, the internet)
    units: dict = field(default_factory=dict)      # unit id -> fingerprints.UnitPrint
    behaviour: dict = field(default_factory=dict)  # call key -> digest of the output (students only)


@dataclass
class Pair:
    a: str
    b: str
    score: float
    code: float
    behaviour: float
    units: dict            # unit id -> score, for units both have
    shared_wrong: list     # call keys where both gave the same wrong output
    known: bool = False    # b is a known solution
    shared: float = 0.0    # absolute: the mean likeness of the units both have (1 when identical), whatever the class

    def ranked_units(self) -> list[tuple[str, float]]:
        """(unit, score), the most alike first, as shown (two decimals); equal ones by name, so that the order
        does not hang on the last bits of a float."""
        return sorted(self.units.items(), key=lambda item: (-round(item[1], 2), item[0]))


@dataclass
class Comparison:
    students: list
    units: list
    pairs: list             # student pairs, most alike first (those at REPORTED or more, and each one's best)
    known_pairs: list       # (student, known solution) pairs, most alike first
    best: dict              # student -> their highest score with another student
    groups: list            # lists of three or more students joined by pairs at GROUP_AT or more
    documents: dict         # name -> Document, for the side-by-side views
    matrix: np.ndarray | None = None  # every student pair's score, students in the order of `students`
    small: bool = False     # too few students to judge how rare a piece of code is: pairs ranked by `shared`


# ---------------------------------------------------------------- documents

def split_units(cells: Iterable[tuple[str | None, str]], unit_ids: Collection[str], function_units: Mapping[str, str]
                ) -> tuple[dict[str, str], list[str]]:
    """(unit id -> code, helper code list) from `cells`, a list of (grade_id or None, source).

    A cell whose grade_id is a unit is that unit. A cell without one (a student's own cell, a known
    solution's) gives each top-level function named as a unit's function to that unit, and the
    rest as helpers. As when the notebook runs, a later definition of a unit's function is the one
    that counts (a stub left in the graded cell and the answer pasted into a cell below it is that
    answer); what it replaces becomes a helper. Test and other graded cells are the assignment's,
    not the author's: skipped.
    """
    units: dict[str, str] = {}
    helpers: list[str] = []

    def take(unit, code):
        if unit in units:
            helpers.append(units[unit])
        units[unit] = code
    for grade_id, source in cells:
        if grade_id in unit_ids:
            take(grade_id, source)
        elif grade_id is None:
            for name, code in _top_level_functions(source):
                unit = function_units.get(name)
                if unit is not None:
                    take(unit, code)
                else:
                    helpers.append(code)
    return units, helpers


def _top_level_functions(source):
    """(name, code) of each top-level function of `source`; the whole source, unnamed, if it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return [(None, source)]
    lines = fingerprints.source_lines(source)
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            found.append((node.name, "\n".join(lines[start - 1:node.end_lineno])))
    return found


def document(name: str, units: Mapping[str, str], helpers: Iterable[str] = (),
             forced: Mapping[str, set[int]] | None = None, known: bool = False,
             behaviour: Mapping[str, int | None] | None = None) -> Document:
    """A Document from code: `units` (unit id -> code), `helpers` (code of other functions), `forced`
    (unit id -> pieces every student has from the release, taken away)."""
    forced = forced or {}
    helper_prints = {}
    for code in helpers:
        printed = fingerprints.unit_print(code)
        for function in printed.defines:
            helper_prints[function] = printed
    prints = {}
    for unit, code in units.items():
        printed = fingerprints.unit_print(code)
        pieces = {h: lines for h, lines in printed.pieces.items() if h not in forced.get(unit, ())}
        for called in sorted(printed.calls - printed.defines):
            helper = helper_prints.get(called)
            if helper is not None:  # a helper it calls: its pieces are the unit's (no lines of the unit's own)
                for h in helper.pieces:
                    if h not in forced.get(unit, ()):
                        pieces.setdefault(h, set())
        prints[unit] = fingerprints.UnitPrint(pieces, code, printed.calls, printed.defines)
    return Document(name, known, prints, dict(behaviour or {}))


def forced_pieces(release_units: Mapping[str, str]) -> dict[str, set[int]]:
    """unit id -> the pieces of the unit as handed out (the release's cell)."""
    return {unit: set(fingerprints.unit_print(code).pieces) for unit, code in release_units.items()}


# ---------------------------------------------------------------- behaviour




# ---------------------------------------------------------------- comparing

def compare(documents: Collection[Document], master: Document | None = None,
            master_behaviour: Mapping[str, int | None] | None = None) -> Comparison:
    """Every pair of student documents, and every student against every known solution.

    `master`: the master's Document (its pieces weigh less); `master_behaviour`: call key -> the
    master's digest (an output that differs from it is wrong). Rarity and the class's pairs are the
    students' alone: known solutions change no score between students. A student's match with a known
    solution is absolute (how much of the file's rare weight they share), however many others match it.
    """
    students = sorted(d.name for d in documents if not d.known)
    known = sorted(d.name for d in documents if d.known)
    order = students + known
    by_name = {d.name: d for d in documents}
    s = len(students)
    units = sorted({u for d in documents for u in d.units})
    unit_scores, known_coverage = {}, {}
    for unit in units:
        found = _unit_likeness(unit, order, s, by_name, master)
        if found is not None:
            unit_scores[unit], known_coverage[unit] = found

    # Each unit, and the behaviour, is evidence in its own right: how unusual the pair's likeness is among all
    # the pairs of the class (its p-value, in nats). Independent pieces of evidence add up.
    code_evidence: Any = np.zeros((s, s), np.float32)  # single precision: a class of 1,000 holds several of these
    for matrix in unit_scores.values():
        code_evidence += _surprisal(matrix)
    behaviour, shared = _behaviour(students, by_name, master_behaviour or {})
    behaviour_evidence = _surprisal(behaviour)
    # Evidence to a score: what an ordinary pair of this class has (its mean) counts for nothing; beyond that,
    # half of the most a unit can give (every other pair less alike) makes 1 - 1/e.
    ordinary = _mean_off_diagonal(code_evidence + behaviour_evidence)
    scale = max(1.0, math.log(max(s * (s - 1) / 2, 2)))
    code = _score(code_evidence, ordinary, scale)
    total = _score(code_evidence + behaviour_evidence, ordinary, scale)
    behaviour = _score(behaviour_evidence, 0.0, scale)

    pairs = _pairs(students, range(s), range(s), total, code, behaviour, unit_scores, shared)
    for pair in pairs:
        pair.shared = _shared(pair, students, by_name, unit_scores)
    small = s < SMALL_CLASS
    if small:  # rarity cannot be judged among a handful: the most code in common first
        pairs.sort(key=lambda p: (-p.shared, -p.score, p.a, p.b))
    known_pairs = _known_pairs(students, known, by_name, known_coverage)
    best = {name: float(total[i].max()) if s > 1 else 0.0 for i, name in enumerate(students)}
    return Comparison(students, units, pairs, known_pairs, best, _groups(pairs), by_name, total, small)


def _shared(pair, students, by_name, unit_scores):
    """The mean likeness of the units both students have (either way round): 1 for identical code."""
    a, b = students.index(pair.a), students.index(pair.b)
    both = [u for u in by_name[pair.a].units if u in by_name[pair.b].units and u in unit_scores]
    if not both:
        return 0.0
    return float(np.mean([max(unit_scores[u][a, b], unit_scores[u][b, a]) for u in both]))


def _unit_likeness(unit, order, s, by_name, master):
    """(students x students likeness, students x known coverage) for one unit, or None if no piece is shared.
    Document frequencies count the students only; a piece no student has weighs as one only one has."""
    from scipy import sparse

    n = len(order)
    prints = [by_name[name].units.get(unit) for name in order]
    df = {}
    for printed in prints[:s]:
        for h in (printed.pieces if printed else ()):
            df[h] = df.get(h, 0) + 1
    master_pieces = set(master.units[unit].pieces) if master and unit in master.units else set()

    def idf(h):
        return math.log((s + 1) / df.get(h, 1)) * (MASTER_WEIGHT if h in master_pieces else 1.0)
    in_known = {h for printed in prints[s:] if printed for h in printed.pieces}
    rows, columns, column_of, weight = [], [], {}, np.zeros(n)
    for i, printed in enumerate(prints):
        for h in (printed.pieces if printed else ()):
            weight[i] += idf(h)
            # a column for what two can share: two students, or a student and a known solution
            if df.get(h, 0) > 1 or (df.get(h, 0) == 1 and h in in_known):
                rows.append(i)
                columns.append(column_of.setdefault(h, len(column_of)))
    if not column_of:
        return None
    idf_vector = np.zeros(len(column_of))
    for h, j in column_of.items():
        idf_vector[j] = idf(h)
    matrix = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape=(n, len(column_of)))
    overlap = (matrix.multiply(idf_vector.astype(np.float32)) @ matrix[:s].T).toarray()  # every document against
    #                                                                                      the students
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.nan_to_num(overlap / np.sqrt(np.outer(weight, weight[:s])))
    students = weight[:s]
    typical = float(np.median(students[students > 0])) if (students > 0).any() else 1.0
    mass = 1.0 - np.exp(-overlap[:s] / max(MASS_SHARE * typical, 1e-9))
    score = np.clip(coverage[:s] * mass, 0.0, 1.0)
    np.fill_diagonal(score, 0.0)
    return score.astype(np.float32), np.clip(coverage[s:].T, 0.0, 1.0)  # students x known


def _known_pairs(students, known, by_name, coverage):
    """Each student against each known solution: the mean over the better half of the file's units of how much
    of its rare weight they share (a file pasted whole, or half of it, scores near 1)."""
    pairs = []
    for k, name in enumerate(known):
        mine = [u for u in coverage if by_name[name].units.get(u) and by_name[name].units[u].pieces]
        for i, student in enumerate(students):
            per_unit = {u: float(coverage[u][i, k]) for u in mine if coverage[u][i, k] > 0}
            values = sorted((per_unit.get(u, 0.0) for u in mine), reverse=True)
            if not values:
                continue
            score = float(np.mean(values[:max(1, math.ceil(len(values) / 2))]))
            if score >= REPORTED:
                pairs.append(Pair(student, name, score, score, 0.0, per_unit, [], known=True))
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs


def _mean_off_diagonal(matrix):
    n = matrix.shape[0]
    return float((matrix.sum() - np.trace(matrix)) / (n * (n - 1))) if n > 1 else 0.0


def _score(evidence, ordinary, scale):
    score = 1.0 - np.exp(-np.maximum(evidence - ordinary, 0.0) / (2 * scale))
    np.fill_diagonal(score, 0.0)
    return score


def _surprisal(matrix):
    """-log of the share of the class's pairs at least as alike as each pair; 0 where they share nothing."""
    n = matrix.shape[0]
    if n < 2:
        return np.zeros((n, n))
    ordered = np.sort(matrix[np.triu_indices(n, 1)])
    at_least = len(ordered) - np.searchsorted(ordered, matrix, side="left")
    evidence = -np.log(np.maximum(at_least, 1) / len(ordered), dtype=np.float32)
    evidence[matrix <= 0] = 0.0
    np.fill_diagonal(evidence, 0.0)
    return evidence


def _behaviour(order, by_name, master):
    """(scores, shared): how strongly each pair shares wrong outputs, and for the pairs that do, where."""
    from scipy import sparse

    n = len(order)
    # What is right: the master's output; without it (no recording), the output most of the class gave.
    counts = {}
    for name in order:
        for key, digest in by_name[name].behaviour.items():
            counts.setdefault(key, {}).setdefault(digest, 0)
            counts[key][digest] += 1
    right = {key: max(found, key=found.get) for key, found in counts.items()}
    right.update(master)
    df, cells = {}, {}
    for i, name in enumerate(order):
        for key, digest in by_name[name].behaviour.items():
            if digest is not None and digest != right.get(key):
                df[(key, digest)] = df.get((key, digest), 0) + 1
                cells.setdefault((key, digest), []).append(i)
    common = [k for k, c in df.items() if c > 1]
    if not common:
        return np.zeros((n, n)), {}
    rows = [i for k in common for i in cells[k]]
    columns = [j for j, k in enumerate(common) for _ in cells[k]]
    idf = np.array([math.log((n + 1) / df[k]) for k in common])
    matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(n, len(common)))
    overlap = (matrix.multiply(idf) @ matrix.T).toarray()
    np.fill_diagonal(overlap, 0.0)
    return overlap, {"cells": cells, "common": common}


def _shared_wrong(shared, i, j):
    if not shared:
        return []
    return sorted({key for key, digest in shared["common"] if i in shared["cells"][(key, digest)]
                   and j in shared["cells"][(key, digest)]})


def _pairs(order, left, right, total, code, behaviour, unit_scores, shared):
    """The student pairs worth reporting: at REPORTED or more, and each student's best."""
    left, right = list(left), list(right)
    if not left or not right:
        return []
    block = total[np.ix_(left, right)]
    chosen = set(zip(*np.nonzero(block >= REPORTED)))
    chosen.update((i, int(block[i].argmax())) for i in range(len(left)) if block[i].max() > 0)
    found = set()
    for i, j in chosen:
        a, b = sorted((left[i], right[j]))
        if a != b:
            found.add((a, b))
    pairs = [Pair(order[a], order[b], float(total[a, b]), float(code[a, b]), float(behaviour[a, b]),
                  {u: float(m[a, b]) for u, m in unit_scores.items() if m[a, b] > 0}, _shared_wrong(shared, a, b))
             for a, b in found]
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs


def _groups(pairs):
    """Students joined by pairs at GROUP_AT or more: the components of three or more."""
    parent = {}

    def root(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for pair in pairs:
        if pair.score >= GROUP_AT:
            parent[root(pair.a)] = root(pair.b)
    members = {}
    for name in parent:
        members.setdefault(root(name), []).append(name)
    return sorted((sorted(m) for m in members.values() if len(m) >= 3), key=lambda m: (-len(m), m))


def shared_lines(one: fingerprints.UnitPrint, other: fingerprints.UnitPrint) -> tuple[set[int], set[int]]:
    """(lines of `one`'s code, lines of `other`'s) covered by the pieces they share: the side-by-side view."""
    common = set(one.pieces) & set(other.pieces)
    left = set().union(*(one.pieces[h] for h in common)) if common else set()
    right = set().union(*(other.pieces[h] for h in common)) if common else set()
    return left, right
