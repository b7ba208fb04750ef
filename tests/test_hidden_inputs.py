"""Hidden inputs cannot be reconstructed: per-check seeds are HMAC-SHA256 of a grading secret of
at least 128 bits (kept per term by `release`), and feedback shows numbers rounded, including
student exception messages and tracebacks that quote a hidden input."""
from __future__ import annotations

import hashlib
import hmac
import json
import zlib

import pytest
import torch

from autograder.assignment import GRADING_FILE, grading_settings
from autograder.checks.hidden import HiddenInputs, check_seed
from autograder.feedback.case import round_numbers
from autograder.feedback.misconceptions import Feedback
from autograder.release import term

SECRET = "00112233445566778899aabbccddeeff"


def test_committed_secret_is_at_least_128_bits_of_hex():
    secret = grading_settings()["grading_seed"]
    assert isinstance(secret, str) and len(bytes.fromhex(secret)) >= 16


def test_check_seed_is_the_hmac_of_the_check_name():
    digest = hmac.new(bytes.fromhex(SECRET), b"loss", hashlib.sha256).digest()
    assert check_seed(SECRET, "loss") == int.from_bytes(digest[:8], "big")
    assert check_seed(SECRET, "loss") != check_seed(SECRET, "forward")
    assert check_seed(SECRET, "loss") != check_seed("ff" + SECRET[2:], "loss")
    # not the old seed ^ crc32(name), which a 2^32 search over seeds recovered
    assert check_seed(SECRET, "loss") != int(SECRET, 16) ^ zlib.crc32(b"loss")


@pytest.mark.parametrize("weak", [1825128201, "abcd", "00" * 15, "not hex at all", None])
def test_a_weak_or_missing_secret_is_refused(weak):
    with pytest.raises(ValueError, match="128 bits"):
        HiddenInputs(weak, "loss", "cpu")


def test_hidden_inputs_are_reproducible_and_differ_per_check():
    a, b, c = (HiddenInputs(SECRET, "update", "cpu"), HiddenInputs(SECRET, "update", "cpu"),
               HiddenInputs(SECRET, "loss", "cpu"))
    assert torch.equal(a.column(5), b.column(5))
    assert not torch.equal(HiddenInputs(SECRET, "update", "cpu").column(5), c.column(5))


def test_step_magnitudes_span_orders_of_magnitude_and_both_signs():
    hidden = HiddenInputs(SECRET, "update", "cpu")
    values = torch.stack([hidden.signed_log_uniform(1e-2, 1e5) for _ in range(400)])
    assert (values > 0).any() and (values < 0).any()
    assert values.abs().min() < 0.1 and values.abs().max() > 1e4


def test_release_keeps_the_stored_secret_for_the_same_term_and_makes_a_new_one_otherwise(tmp_path):
    stored = tmp_path / "grading.json"
    stored.write_text(json.dumps({"term": "2031-fall", "grading_seed": SECRET}))
    assert term.grading_secret("2031-fall", stored) == SECRET
    fresh = {term.grading_secret("2032-spring", stored) for _ in range(3)}
    assert len(fresh) == 3 and SECRET not in fresh
    assert all(len(bytes.fromhex(secret)) >= 16 for secret in fresh)
    stored.write_text(json.dumps({"term": "2031-fall", "grading_seed": 12345}))  # an old integer seed
    assert term.grading_secret("2031-fall", stored) != 12345


def test_derive_reads_the_kits_stored_secret():
    settings = json.loads(GRADING_FILE.read_text())
    assert term.derive(settings["term"]).grading_seed == settings["grading_seed"]


def test_long_numbers_in_text_are_rounded():
    assert round_numbers("tensor([[1.2345678], [-0.00012345678]])") == "tensor([[1.235], [-0.0001235]])"
    assert round_numbers("x = 18.193039 or 1.23456789e-05 or 123456789") == "x = 18.19 or 1.235e-05 or 1.235e+08"
    # what is not a long number stays: line numbers, versions, short values, names
    unchanged = 'File "<cell 3>", line 12, in update; torch 2.13.0; lr = 0.1; w2 = 3.25; x1234567890'
    assert round_numbers(unchanged) == unchanged


def test_a_traceback_quoting_a_hidden_input_is_rounded_in_feedback():
    x = torch.tensor([[1.23456789], [2.98765432]])
    with torch._tensor_str.printoptions(precision=8):
        quoted = repr(x)
    error = Feedback("exception", detail=f"Calling forward(x, w) raised:\nValueError: {quoted}")
    assert "1.23456789" not in error.message and "1.235" in error.message
    assert "2.988" in error.message
