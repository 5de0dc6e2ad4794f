from agentmem.factcheck import recalls, unverifiable_reason
from agentmem.gate import decide

GOOD = {"recall": 1.0, "heldout_recall": 0.5, "retention": 1.0, "n_new": 3, "n_previous": 2, "n_heldout": 6,
        "general_agreement": 0.8, "mc_accuracy": 0.75, "mc_accuracy_base": 0.75, "canaries_passed": 6,
        "canaries_total": 6, "canary_failures": []}


def test_all_good_promotes(settings):
    result = decide(settings, GOOD)
    assert result.promoted and result.reason == "all checks passed"
    assert {c.name for c in result.checks} == {"recall", "retention", "general_agreement", "mc_accuracy_drop",
                                               "canaries"}


def test_each_failure_is_named(settings):
    cases = {
        "recall": {"recall": 0.5},
        "retention": {"retention": 0.2},
        "general_agreement": {"general_agreement": 0.1},
        "mc_accuracy_drop": {"mc_accuracy": 0.5},
        "canaries": {"canaries_passed": 5, "canary_failures": ["What is the capital of France?"]},
    }
    for name, change in cases.items():
        result = decide(settings, GOOD | change)
        assert not result.promoted
        assert [c.name for c in result.failed] == [name]
        assert name in result.reason


def test_no_retention_check_on_a_first_run(settings):
    result = decide(settings, GOOD | {"retention": None, "n_previous": 0})
    assert result.promoted and "retention" not in {c.name for c in result.checks}


def test_thresholds_come_from_settings(settings):
    strict = settings.model_copy(update={"gate_min_recall": 1.0})
    assert not decide(strict, GOOD | {"recall": 0.99}).promoted
    assert decide(settings, GOOD | {"recall": 0.99}).promoted


def test_comparison_with_active_adapter_is_reported(settings):
    result = decide(settings, GOOD, {"recall": 0.9, "heldout_recall": 0.4, "mc_accuracy": 0.7})
    assert result.to_dict()["compared_with"]["recall"] == 0.9


def test_unverifiable_facts():
    assert unverifiable_reason("The capital of Zorbania is Quellmark.") is None
    assert "pronoun" in unverifiable_reason("It is 42.")
    assert "hedged" in unverifiable_reason("Maybe the meeting moved to Tuesday.")
    assert "question" in unverifiable_reason("Is the office open on Sunday?")
    assert "short" in unverifiable_reason("Blue sky.")


def test_recall_uses_the_object_phrase():
    fact = "The capital of Zorbania is Quellmark."
    assert recalls("Zorbania's capital city is Quellmark, a port.", fact)
    assert not recalls("The capital of Zorbania is Paris.", fact)
    assert recalls("the answer is 26", "The tower has 26 floors.", answer="twenty-six")


def test_rehearsal_never_trains_a_golden_prompt():
    """The gate measures regression on prompts never trained: rehearsal answers must not cover golden items."""
    from agentmem.golden import load_golden
    from agentmem.synthesize import load_general_prompts

    golden = load_golden()
    measured = ({c["prompt"] for c in golden.canaries} | set(golden.general)
                | {m["question"] for m in golden.multiple_choice})
    assert len(measured) > 40
    assert not measured & set(load_general_prompts())
