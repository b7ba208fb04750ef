"""`make coursera-check`: the Coursera grader image end to end, built from a clean Debian root.

Coursera builds the image from the bundle's Dockerfile and runs its entry point once per
submission, as a non-root user with no network (1 vCPU and 4096 MB by default). This script does
the same with nothing of this machine's Python inside (the clean root and its plumbing:
tools/image_check.py, shared with `make gradescope-check`), with one of two engines:

  podman  (default where `podman` runs) the bundle's Dockerfile itself, built by podman with the
          debootstrapped Debian 12 root standing in for its FROM image (`podman build --from`),
          then `podman run` per submission: the image's own user, --network none, 1 CPU, 4 GiB;
  chroot  the image's install command (autograder/image/) in a fresh copy of that root, then the
          entry point by chroot as the image's user, in a new network namespace (no network).

Per submission, in a container that refuses new namespaces as Docker's default profile does
(Coursera's is not documented; podman: a seccomp profile, chroot: AUTOGRADER_MAX_CONFINEMENT), so
the level is `landlock` on a kernel with Landlock ABI 6: the reference (1.0), the untouched
release (0.0), a typical wrong notebook (sum instead of mean), a hostile one (every step finds
and runs the reference: no points), a broken upload (not JSON: 0 and a message), a file that was
not a notebook (`filename`: 0 and a message); the reference again where Landlock is refused too
(no level: the grader refuses, no score, exit 1); the reference at the engine's default; and a
TA's `autograde` of the sample class, as root in the engine's default container, on the course
mounted at /course.
Each feedback.json is checked, and the time of each run (the learner's wait, container start
included) and the image's size are reported.

Needs root, debootstrap (and podman with runc for the podman engine: `apt-get install podman
runc`), the network for Debian's and Python's package registries, and about 5 GB of disk. Not
part of `make test` (about 10 minutes).
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from image_check import (  # noqa: E402
    KIT,
    TORCH_WHEELS_INSIDE,
    WRONG_CRITERION,
    Check,
    StepFailed,
    default_workdir,
    needs_root,
    notebook_bytes,
)

from autograder import image  # noqa: E402
from autograder.coursera import bundle  # noqa: E402
from autograder.outputs.coursera import CAP_BYTES, NOT_YOUR_FAULT  # noqa: E402

BASE_TAG = "localhost/pytorch-slope-check-base:bookworm"
IMAGE_TAG = "localhost/pytorch-slope-coursera-check:latest"
PODMAN = ["podman", "--runtime", "runc"]  # crun refuses this machine's hybrid cgroups
# podman's default limits are above what root may set here (no CAP_SYS_RESOURCE)
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
# Docker's default profile for a container without CAP_SYS_ADMIN: no new namespaces
_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
ENOSYS = 38
MODES = {  # name -> (what it stands for, chroot's settings)
    "coursera": ("a container that refuses new namespaces (Docker's default profile; Coursera's is not documented)",
                 {"AUTOGRADER_MAX_CONFINEMENT": "landlock"}),
    "no-level": ("the same, on a kernel without Landlock: no level protects the kit",
                 {"AUTOGRADER_MAX_CONFINEMENT": "unconfined"}),
    "default": ("the engine's default (podman's profile allows user namespaces)", {}),
}


def seccomp_profile(refuse_landlock: bool) -> dict:
    """podman's default seccomp profile, refusing new namespaces as Docker's default does (and,
    with `refuse_landlock`, Landlock as a kernel without it would)."""
    profile = json.loads(Path("/usr/share/containers/seccomp.json").read_text())
    dropped = {"unshare", "setns", "clone", "clone3"}
    if refuse_landlock:
        dropped |= {"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"}
    for rule in profile["syscalls"]:
        rule["names"] = [name for name in rule["names"] if name not in dropped]
    profile["syscalls"] = [rule for rule in profile["syscalls"] if rule["names"]]
    profile["syscalls"] += [
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": _NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
    ]
    if refuse_landlock:
        profile["syscalls"].append({"names": ["landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"],
                                    "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    return profile


class CourseraCheck(Check):
    name = "coursera-check"

    def __init__(self, workdir: Path, engine: str, keep_image: bool):
        super().__init__(workdir)
        self.engine = engine
        self.keep_image = keep_image
        self.context = self.here / "context"  # the zip, unpacked: Coursera's build context
        # the folder Coursera mounts at /shared: podman mounts it; a chroot has it inside
        self.shared = self.here / "shared" if engine == "podman" else self.root / "shared"
        self.course = self.here / "course" if engine == "podman" else self.root / "course"  # a TA's, at /course
        self._uid: int | None = None
        self.torch_env: dict[str, str] = {}
        self.waits: dict[str, float] = {}

    # ------------------------------------------------------------------ both engines
    def unpack_bundle(self) -> None:
        zip_path = self.here / "coursera_grader.zip"
        self.sh([sys.executable, "-m", "autograder", "coursera-bundle", "--output", str(zip_path)], timeout=300,
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(KIT)})
        shutil.rmtree(self.context, ignore_errors=True)
        image.unpack(zip_path, self.context)
        dockerfile = (self.context / bundle.DOCKERFILE).read_text()
        assert f"USER {image.USER}" in dockerfile and image.install_command(user=image.USER) in dockerfile, dockerfile

    def grade(self, name: str, files: dict[str, bytes], mode: str = "coursera", env: dict | None = None,
              graded: bool = True) -> dict:
        """Run the entry point on a submission of `files`; its feedback.json, checked for shape."""
        shutil.rmtree(self.shared, ignore_errors=True)
        submission = self.shared / "submission"
        submission.mkdir(parents=True)
        for file_name, data in files.items():
            (submission / file_name).write_bytes(data)
            (submission / file_name).chmod(0o444)
        submission.chmod(0o555)  # Coursera's submission folder is read-only
        uid = self.grader_uid()
        shutil.chown(self.shared, uid, uid)  # writable by the image's user, as Coursera's is
        start = time.monotonic()
        status, log = self.run_entry(mode, {"partId": "check", "userId": "coursera-check", **(env or {})})
        self.waits[name] = seconds = time.monotonic() - start
        feedback = json.loads((self.shared / "feedback.json").read_text())
        level = next((line.split("confinement: ", 1)[1].split(";")[0] for line in log.splitlines() if "confinement: " in line), "?")
        self.say(f"   {name}: exit {status}, fractionalScore {feedback.get('fractionalScore', '(none)')}, level {level}, "
                 f"{seconds:.1f} s")
        assert isinstance(feedback.get("feedback"), str), feedback
        assert set(feedback) <= {"fractionalScore", "feedback", "feedbackType"}, feedback
        assert len((self.shared / "feedback.json").read_bytes()) <= CAP_BYTES + 1000
        if graded:
            assert status == 0, log[-3000:]
            assert 0 <= feedback["fractionalScore"] <= 1 and feedback["feedbackType"] == "HTML", feedback
            page = (self.shared / "htmlFeedback.html").read_bytes()
            assert page.startswith(b"<!DOCTYPE html>") and len(page) <= CAP_BYTES, page[:200]
        else:
            assert status == 1 and "fractionalScore" not in feedback and feedback["feedback"] == NOT_YOUR_FAULT, (status, feedback)
        feedback["level"] = level
        return feedback

    def cases(self) -> list:
        sys.path.insert(0, str(KIT / "tests"))
        import attacks  # the confinement matrix's thief: every step finds and runs the reference

        release = (KIT / "release" / "pytorch_slope" / "pytorch_slope.ipynb").read_bytes()
        thief = attacks.thief(str(image.SOURCE))
        import nbformat

        def reference():
            feedback = self.grade("reference", {"pytorch_slope.ipynb": notebook_bytes()})
            assert feedback["fractionalScore"] == 1.0, feedback
            self.fact(f"the learner's wait for the reference: {self.waits['reference']:.1f} s "
                      f"(podman run to exit, 1 CPU)" if self.engine == "podman" else
                      f"the learner's wait for the reference: {self.waits['reference']:.1f} s (chroot, no container start)")
            self.fact(f"confinement level in a container that refuses new namespaces: {feedback['level']}")

        def untouched_release():
            assert self.grade("untouched release", {"pytorch_slope.ipynb": release})["fractionalScore"] == 0.0

        def wrong():
            feedback = self.grade("wrong (sum instead of mean)",
                                  {"pytorch_slope.ipynb": notebook_bytes({"criterion": WRONG_CRITERION})})
            assert 0 < feedback["fractionalScore"] < 1 and "loss: 0/2 failed" in feedback["feedback"], feedback

        def hostile():
            feedback = self.grade("hostile (every step runs the reference)",
                                  {"pytorch_slope.ipynb": nbformat.writes(thief).encode()})
            assert feedback["fractionalScore"] == 0.0, feedback

        def broken():
            feedback = self.grade("broken upload (not JSON)", {"pytorch_slope.ipynb": b'{"cells": ['})
            assert feedback["fractionalScore"] == 0.0 and "not a valid notebook" in feedback["feedback"], feedback

        def not_a_notebook():
            feedback = self.grade("a file that was not a notebook", {"pytorch_slope.ipynb": b"print('hello')\n"},
                                  env={"filename": "homework.py"})
            assert feedback["fractionalScore"] == 0.0 and "homework.py" in feedback["feedback"], feedback

        def no_level():
            self.grade("reference where no level protects the kit", {"pytorch_slope.ipynb": notebook_bytes()},
                       mode="no-level", graded=False)

        def default():
            feedback = self.grade("reference at the engine's default", {"pytorch_slope.ipynb": notebook_bytes()}, mode="default")
            assert feedback["fractionalScore"] == 1.0, feedback
            self.fact(f"confinement level at the engine's default: {feedback['level']}")
            self.fact("each run (the learner's wait): " + "; ".join(f"{name} {seconds:.1f} s" for name, seconds in self.waits.items()))

        def ta_autograde():
            shutil.rmtree(self.course, ignore_errors=True)
            shutil.copytree(KIT / "sample_class", self.course,
                            ignore=shutil.ignore_patterns("feedback", "reports", "autograded", "gradebook.db*", ".autograde-state*"))
            start = time.monotonic()
            status, log = self.run_entry("default", {}, ("autograde", "pytorch_slope", "--course-dir", "/course"))
            seconds = time.monotonic() - start
            assert status == 0, log[-3000:]
            run = json.loads((self.course / "reports" / "pytorch_slope" / "run.json").read_text())
            students = len(list((self.course / "submitted").iterdir()))
            assert (self.course / "gradebook.db").is_file() and len(list((self.course / "feedback").iterdir())) == students, log
            level = (run.get("confinement") or {}).get("level")
            self.fact(f"a TA's autograde of the sample class ({students} students) as root in the engine's default "
                      f"container, on the course mounted at /course: {seconds:.0f} s, confinement {level}")

        return [("reference: 1.0", reference), ("untouched release: 0.0", untouched_release), ("wrong notebook", wrong),
                ("hostile notebook: no points", hostile), ("broken upload: 0 and a message", broken),
                ("a file that was not a notebook: 0 and a message", not_a_notebook),
                ("no confinement level: refused, no score", no_level), ("reference at the engine's default", default),
                ("a TA's autograde on a mounted course, as root", ta_autograde)]

    def plan(self) -> list:
        if self.engine == "podman":
            build = [("base image from the Debian root (podman import)", self.podman_base),
                     ("podman build of the bundle's Dockerfile", self.podman_build)]
        else:
            build = [("fresh copy, mounts, DNS and CA certificates", self.make_root),
                     ("the image's install command in the chroot", self.chroot_build)]
        return [("debootstrap a base Debian root filesystem", self.make_base),
                ("coursera-bundle unpacked", self.unpack_bundle), *build,
                *((f"run_grader: {name}", action) for name, action in self.cases())]

    def grader_uid(self) -> int:
        if self._uid is None:
            self._uid = self._grader_uid()
        return self._uid

    def _grader_uid(self) -> int:
        if self.engine == "podman":
            out = self.sh([*PODMAN, "run", "--rm", *ULIMITS, "--network", "none", "--entrypoint", "id", IMAGE_TAG, "-u"],
                          timeout=120).stdout
        else:
            out = self.in_chroot(f"id -u {image.USER}", timeout=60).stdout
        return int(out.strip().splitlines()[-1])

    def run_entry(self, mode: str, env: dict, args: tuple[str, ...] = ()) -> tuple[int, str]:
        """The image's entry point with `args` (none: Coursera's grading of /shared)."""
        return self.podman_run(mode, env, args) if self.engine == "podman" else self.chroot_run(mode, env, args)

    # ------------------------------------------------------------------ podman
    def podman_base(self) -> None:
        """The debootstrapped root as the Dockerfile's FROM image, trusting this machine's CAs."""
        copy = self.here / "base-image"
        shutil.rmtree(copy, ignore_errors=True)
        self.sh(["cp", "-a", str(self.base), str(copy)], timeout=600)
        try:
            self.trust_this_machine(copy)
            self.torch_env = self.torch_wheels(copy)
            wheels = copy / TORCH_WHEELS_INSIDE.lstrip("/")
            if wheels.is_dir():  # given to the build as a volume, not kept in the base
                shutil.rmtree(self.here / "wheels", ignore_errors=True)
                shutil.move(wheels, self.here / "wheels")
            subprocess.run(["podman", "rmi", BASE_TAG], capture_output=True)  # an earlier run's, unless an image uses it
            self.sh(["sh", "-c", f"tar -C {shlex.quote(str(copy))} -c . | podman import - {BASE_TAG}"], timeout=600)
        finally:
            shutil.rmtree(copy, ignore_errors=True)

    def podman_build(self) -> None:
        subprocess.run(["podman", "rmi", "-f", IMAGE_TAG], capture_output=True)  # an earlier run's (--keep-image)
        build_args = [f"--build-arg={name}={value}" for name, value in self.torch_env.items()]
        volumes = ["-v", f"{self.here / 'wheels'}:{TORCH_WHEELS_INSIDE}:ro"] if (self.here / "wheels").is_dir() else []
        self.sh([*PODMAN, "build", *ULIMITS, "--from", BASE_TAG, *volumes, *build_args, "-t", IMAGE_TAG, str(self.context)],
                timeout=3600)
        size = int(self.sh(["podman", "image", "inspect", "--format", "{{.Size}}", IMAGE_TAG], timeout=60).stdout.split()[-1])
        base = int(self.sh(["podman", "image", "inspect", "--format", "{{.Size}}", BASE_TAG], timeout=60).stdout.split()[-1])
        self.fact(f"image size: {size / 1e6:.0f} MB (podman image inspect), of which {base / 1e6:.0f} MB is the Debian base "
                  f"(debootstrap minbase; debian:bookworm-slim is about 75 MB)")
        version = self.sh([*PODMAN, "run", "--rm", *ULIMITS, "--network", "none", "--entrypoint", f"{image.VENV}/bin/python",
                           IMAGE_TAG, "-c", "import sys, torch; print(sys.version.split()[0], torch.__version__)"],
                          timeout=300).stdout
        self.say(f"   inside: Python and torch {version.strip().splitlines()[-1]}")

    def podman_run(self, mode: str, env: dict, args: tuple[str, ...] = ()) -> tuple[int, str]:
        security = []
        if mode != "default":
            profile = self.here / f"seccomp-{mode}.json"
            profile.write_text(json.dumps(seccomp_profile(refuse_landlock=mode == "no-level")))
            security = ["--security-opt", f"seccomp={profile}"]
        variables = [f"--env={name}={value}" for name, value in env.items()]
        if args:  # a TA's command, as root, on the course mounted at /course (2 CPUs, as a laptop's VM might have)
            where = ["--user", "root", "--cpus", "2", "-v", f"{self.course}:/course"]
        else:
            where = ["--cpus", "1", "-v", f"{self.shared}:/shared"]
        proc = self.sh([*PODMAN, "run", "--rm", *ULIMITS, "--network", "none", "--memory", "4g", *security, *where,
                        *variables, IMAGE_TAG, *args], timeout=1800, check=False)
        return proc.returncode, proc.stdout

    # ------------------------------------------------------------------ chroot
    def chroot_build(self) -> None:
        shutil.copytree(self.context, self.root / image.SOURCE.relative_to("/"))
        self.torch_env = self.torch_wheels(self.root)
        base = int(self.sh(["du", "-sb", str(self.base)], timeout=600).stdout.split()[0])
        self.in_chroot(image.install_command(user=image.USER), timeout=3600, env=self.torch_env)
        shutil.rmtree(self.root / TORCH_WHEELS_INSIDE.lstrip("/"), ignore_errors=True)
        size = int(self.sh(["du", "-sbx", str(self.root)], timeout=600).stdout.split()[0])
        self.fact(f"image size: {size / 1e6:.0f} MB (du of the root), of which {base / 1e6:.0f} MB is the Debian base")

    def chroot_run(self, mode: str, env: dict, args: tuple[str, ...] = ()) -> tuple[int, str]:
        settings = {**MODES[mode][1], **env}
        proc = self.in_chroot(f"cd {image.ROOT} && {image.SOURCE / bundle.ENTRY_POINT} {shlex.join(args)}", timeout=1800,
                              env=settings, user=None if args else image.USER, network=False, check=False)
        return proc.returncode, proc.stdout

    def cleanup(self) -> None:
        super().cleanup()
        if self.engine == "podman" and not self.keep_image:
            subprocess.run(["podman", "rmi", "-f", IMAGE_TAG], capture_output=True)
        shutil.rmtree(self.shared, ignore_errors=True)
        shutil.rmtree(self.course, ignore_errors=True)


def podman_works() -> bool:
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return False
    return subprocess.run([*PODMAN, "info"], capture_output=True, timeout=120).returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=default_workdir())
    parser.add_argument("--engine", choices=["auto", "podman", "chroot"], default="auto",
                        help="podman: build and run the Dockerfile; chroot: its install command in a chroot (auto: podman where it runs)")
    parser.add_argument("--fresh-base", action="store_true", help="debootstrap the base again")
    parser.add_argument("--keep-image", action="store_true", help="keep the built image (podman) for a look inside")
    args = parser.parse_args(argv)
    refused = needs_root("coursera-check")
    if refused:
        return refused
    engine = args.engine if args.engine != "auto" else ("podman" if podman_works() else "chroot")
    print(f"coursera-check: engine {engine}", flush=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.fresh_base:
        shutil.rmtree(args.workdir / "base", ignore_errors=True)
    check = CourseraCheck(args.workdir, engine, args.keep_image)
    try:
        return check.run(check.plan())
    except StepFailed as error:  # pragma: no cover - run() reports its own
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
