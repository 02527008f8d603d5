"""Check an `onnxq compare` HTML page against the JSON report it was rendered from.

Usage: python tests/py/check_report_html.py REPORT.json REPORT.html

1. The HTML parses with balanced tags: every non-void element opened is closed, in order
   (self-closing `<x/>` is accepted inside <svg> only, where it is XML syntax).
2. Nothing is loaded from elsewhere: no src=/href= to http://, https:// or //, no `@import`, no
   `url(http...)` in styles.
3. The plotted points (elements with data-series, data-name, data-index, data-sqnr) are exactly the
   JSON's figures: one "weight" point per weight with a `sqnr_db`, one "activation-xmodel" point per
   activation with an `xmodel_sqnr_db`, one "activation-qdq" point per `qdq_sqnr_db`; data-sqnr parses
   to the same float as the JSON number, and there is no point the JSON lacks.

Prints "ok N points" and exits 0, or lists every difference and exits 1.
"""
import json
import re
import sys
from collections import defaultdict
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
EXTERNAL = re.compile(r"^\s*(https?:)?//", re.I)
STYLE_EXTERNAL = re.compile(r"@import|url\(\s*['\"]?\s*(https?:)?//", re.I)
POINT_ATTRS = ("data-series", "data-name", "data-index", "data-sqnr")


class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.errors = []
        self.points = []
        self.in_style = False

    def where(self):
        line, col = self.getpos()
        return f"line {line} col {col + 1}"

    def check_attrs(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href", "xlink:href", "action", "srcset", "poster") and v and EXTERNAL.search(v):
                self.errors.append(f"{self.where()}: external reference <{tag} {k}={v!r}>")
            if k == "style" and v and STYLE_EXTERNAL.search(v):
                self.errors.append(f"{self.where()}: external reference in style attribute {v!r}")
        d = dict(attrs)
        present = [a for a in POINT_ATTRS if a in d]
        if present and len(present) != len(POINT_ATTRS):
            self.errors.append(f"{self.where()}: <{tag}> has {present} but not all of {list(POINT_ATTRS)}")
        elif present:
            self.points.append((d["data-series"], d["data-name"], d["data-index"], d["data-sqnr"], self.where()))

    def handle_starttag(self, tag, attrs):
        self.check_attrs(tag, attrs)
        if tag not in VOID:
            self.stack.append((tag, self.where()))
        self.in_style = tag == "style"

    def handle_startendtag(self, tag, attrs):
        self.check_attrs(tag, attrs)
        if tag not in VOID and not any(t == "svg" for t, _ in self.stack):
            self.errors.append(f"{self.where()}: self-closing <{tag}/> outside <svg> is not closed in HTML")

    def handle_endtag(self, tag):
        if tag in VOID:
            self.errors.append(f"{self.where()}: end tag </{tag}> of a void element")
            return
        if not self.stack:
            self.errors.append(f"{self.where()}: </{tag}> closes nothing")
            return
        open_tag, at = self.stack[-1]
        if open_tag != tag:
            self.errors.append(f"{self.where()}: </{tag}> but <{open_tag}> (opened at {at}) is still open")
            # Recover when the tag is open further down, so one slip is reported once.
            if any(t == tag for t, _ in self.stack):
                while self.stack and self.stack[-1][0] != tag:
                    self.stack.pop()
                self.stack.pop()
            return
        self.stack.pop()
        if tag == "style":
            self.in_style = False

    def handle_data(self, data):
        if self.in_style and STYLE_EXTERNAL.search(data):
            self.errors.append(f"{self.where()}: external reference in <style>")


def expected_points(report):
    """(series, name, index) -> list of figures, from the JSON."""
    want = defaultdict(list)
    for w in report.get("weights", []):
        if w.get("sqnr_db") is not None:
            want[("weight", w["name"], w["index"])].append(float(w["sqnr_db"]))
    for a in report.get("activations", []):
        for field, series in (("xmodel_sqnr_db", "activation-xmodel"), ("qdq_sqnr_db", "activation-qdq")):
            if a.get(field) is not None:
                want[(series, a["name"], a["index"])].append(float(a[field]))
    return want


def compare_points(want, points):
    errors = []
    got = defaultdict(list)
    for series, name, index, sqnr, at in points:
        try:
            key = (series, name, int(index))
            value = float(sqnr)
        except ValueError:
            errors.append(f"{at}: unparsable point data-index={index!r} data-sqnr={sqnr!r}")
            continue
        got[key].append((value, at))
    for key in sorted(set(want) | set(got), key=repr):
        w = sorted(want.get(key, []))
        g = sorted(got.get(key, []))
        gv = [v for v, _ in g]
        if w == gv:
            continue
        series, name, index = key
        where = ", ".join(at for _, at in g) or "not plotted"
        errors.append(f"{series} {name!r} index {index}: JSON {w}, HTML {gv} ({where})")
    return errors


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2])
        return 2
    with open(argv[1], encoding="utf-8") as f:
        report = json.load(f)
    with open(argv[2], encoding="utf-8") as f:
        html = f.read()
    page = Page()
    page.feed(html)
    page.close()
    errors = list(page.errors)
    for tag, at in page.stack:
        errors.append(f"<{tag}> opened at {at} is never closed")
    errors += compare_points(expected_points(report), page.points)
    if errors:
        for e in errors:
            print(e)
        print(f"{len(errors)} problem(s)")
        return 1
    print(f"ok {len(page.points)} points")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
