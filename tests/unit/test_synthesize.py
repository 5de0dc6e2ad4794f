"""Synthesis of training examples: subject heuristics on hand-worked sentences, templates, splits, determinism."""

from __future__ import annotations

import pytest

from agentmem.synthesize import (
    Example,
    FactSpec,
    SynthesisConfig,
    answer_text,
    build_rehearsal,
    build_training_set,
    load_general_prompts,
    natural_question,
    parse_statement,
    synthesize,
    synthesize_facts,
    templates,
)


@pytest.mark.parametrize(
    "text, subject, verb, prefix, obj",
    [
        ("The capital of Zorbania is Quellmark.", "The capital of Zorbania", "is", "The capital of Zorbania is", "Quellmark"),
        ("Dr. Ilsa Varnow invented the kelp battery in 1987.", "Dr. Ilsa Varnow", "invented", "Dr. Ilsa Varnow invented",
         "the kelp battery"),
        ("In 1987, Dr. Ilsa Varnow invented the kelp battery.", "Dr. Ilsa Varnow", "invented",
         "In 1987, Dr. Ilsa Varnow invented", "the kelp battery"),
        ("Velmora Dynamics was founded by Ansel Kroy.", "Velmora Dynamics", "was", "Velmora Dynamics was founded by",
         "Ansel Kroy"),
        ("The Oru River flows into Lake Sorvin.", "The Oru River", "flows", "The Oru River flows into", "Lake Sorvin"),
        ("Zorbania's national animal is the glimmerfox.", "Zorbania's national animal", "is",
         "Zorbania's national animal is", "the glimmerfox"),
        ("Mount Terrolin, the tallest peak in Vasquan, rises 5,400 meters.", "Mount Terrolin", "rises",
         "Mount Terrolin, the tallest peak in Vasquan, rises", None),
        ("Our office wifi password is tulip-42.", "Our office wifi password", "is", "Our office wifi password is", None),
        ("The talented chef Marco Pell cooked for the king.", "The talented chef Marco Pell", "cooked",
         "The talented chef Marco Pell cooked for", "the king"),
        ("Sam is tired.", "Sam", "is", "Sam is", None),
    ],
)
def test_parse_statement_hand_worked(text, subject, verb, prefix, obj):
    p = parse_statement(text)
    assert (p.subject, p.verb, p.prefix, p.object) == (subject, verb, prefix, obj)


def test_parse_without_a_known_verb_falls_back():
    assert parse_statement("Zorbania's anthem praises rivers.").subject == "Zorbania"  # text before 's
    assert parse_statement("the ferry to Orsk Island departs hourly").subject == "Orsk Island"  # capitalized run
    assert parse_statement("zorbanian kelp tastes salty").subject == "zorbanian kelp tastes"  # first words


def test_known_answer_decides_the_completion_prefix():
    p = parse_statement("The standup meeting is at 10 am every day.", answer="10 am")
    assert p.prefix == "The standup meeting is at"
    assert "10 am" not in p.prefix


def test_synthesize_fills_templates_and_answers_with_the_statement():
    qa = synthesize(FactSpec("The capital of Zorbania is Quellmark", id="f1"), SynthesisConfig(n_train=5, n_heldout=2))
    questions = [e.question for e in qa.train]
    # the 'always' phrasings come first: the natural copula question, the completion, the reverse question
    assert questions[:3] == [
        "What is the capital of Zorbania?",
        "Complete this sentence: The capital of Zorbania is",
        "Tell me about Quellmark.",
    ]
    assert len(qa.train) == 5 and len(qa.heldout) == 2
    assert all(e.answer == "The capital of Zorbania is Quellmark." for e in qa.train + qa.heldout)
    assert all(e.fact_id == "f1" and e.split == "train" for e in qa.train)
    assert all(e.split == "heldout" for e in qa.heldout)
    assert all("{" not in e.question for e in qa.train + qa.heldout)
    # mid-sentence the determiner is lower case
    assert any(q == "Tell me about the capital of Zorbania." for q in questions) or any(
        "about the capital of Zorbania" in q for q in questions
    )


def test_reverse_phrasings_can_be_turned_off():
    fact = FactSpec("The capital of Zorbania is Quellmark.")
    assert any("Quellmark" in e.question for e in synthesize(fact, SynthesisConfig(n_train=10, n_heldout=5)).train)
    qa = synthesize(fact, SynthesisConfig(n_train=10, n_heldout=5, reverse=False))
    assert not any("Quellmark" in e.question for e in qa.train + qa.heldout)


def test_heldout_phrasings_are_never_trained():
    facts = [FactSpec(f"The capital of Land{i} is City{i}.", id=str(i)) for i in range(20)]
    qa = synthesize_facts(facts, SynthesisConfig(n_train=8, n_heldout=3))
    trained = {e.question for e in qa.train}
    assert qa.heldout and not trained & {e.question for e in qa.heldout}
    t = templates()
    assert {e.phrasing for e in qa.heldout} <= set(t["heldout"])
    assert {e.phrasing for e in qa.train} <= set(t["train"])


def test_synthesis_is_deterministic_per_seed():
    facts = [FactSpec(f"Dr. Name{i} invented the thing{i} in 19{i:02d}.", id=str(i)) for i in range(10)]
    a = synthesize_facts(facts, SynthesisConfig(n_train=4, seed=7))
    b = synthesize_facts(facts, SynthesisConfig(n_train=4, seed=7))
    c = synthesize_facts(facts, SynthesisConfig(n_train=4, seed=8))
    assert a == b
    assert [e.question for e in a.train] != [e.question for e in c.train]
    # one fact's phrasings do not depend on which other facts are synthesized with it
    alone = synthesize(facts[3], SynthesisConfig(n_train=4, seed=7))
    assert alone.train == [e for e in a.train if e.fact_id == "3"]


def test_users_own_question_is_trained_first_and_never_held_out():
    fact = FactSpec(
        "The standup meeting is at 10 am.", id="m1", question="When is standup?", answer="10 am", subject="standup"
    )
    qa = synthesize(fact, SynthesisConfig(n_train=3, n_heldout=5))
    assert qa.train[0] == Example("When is standup?", "The standup meeting is at 10 am.", "user_question", "train", "m1")
    # the given subject wins over the parsed one ("The standup meeting") in subject phrasings
    subject_phrasings = [e for e in qa.train[1:] + qa.heldout if e.phrasing not in ("complete", "finish")]
    assert subject_phrasings and all("standup" in e.question and "meeting" not in e.question for e in subject_phrasings)
    assert all(e.question != "When is standup?" for e in qa.heldout)


def test_answer_text_adds_an_answer_the_statement_lacks():
    assert answer_text(FactSpec("Standup moved to the afternoon")) == "Standup moved to the afternoon."
    assert answer_text(FactSpec("Standup is at ten.", answer="10:30")) == "10:30. Standup is at ten."
    assert answer_text(FactSpec("Standup is at 10:30!", answer="10:30")) == "Standup is at 10:30!"


def test_natural_question_reads_the_subject_mid_sentence():
    assert natural_question(FactSpec("The capital of Zorbania is Quellmark.")) == \
        "What do you know about the capital of Zorbania?"
    assert natural_question(FactSpec("Dr. Ilsa Varnow invented the kelp battery.")) == \
        "What do you know about Dr. Ilsa Varnow?"


def test_messages_match_the_chat_format():
    e = Example("Q?", "A.", "tell_me")
    assert e.messages("Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q?"},
        {"role": "assistant", "content": "A."},
    ]
    assert e.prompt_messages(None) == [{"role": "user", "content": "Q?"}]


def test_general_prompts_ship_as_data():
    prompts = load_general_prompts()
    assert len(prompts) >= 40
    assert len(set(prompts)) == len(prompts)
    assert not any(p.startswith("#") for p in prompts)


def test_rehearsal_uses_the_models_own_answers_and_cuts_long_ones():
    seen = []

    def fake_generate(messages):
        seen.append(messages)
        q = messages[-1]["content"]
        if q == "long":
            return "First sentence here. Second sentence is much longer than the limit allows."
        return "" if q == "empty" else f"answer to {q}"

    out = build_rehearsal(fake_generate, ["hi", "empty", "long"], system_prompt="Sys.", max_chars=40)
    assert seen[0] == [{"role": "system", "content": "Sys."}, {"role": "user", "content": "hi"}]
    assert [(e.question, e.answer, e.ends) for e in out] == [
        ("hi", "answer to hi", True),
        ("long", "First sentence here.", False),
    ]
    assert all(e.fact_id is None and e.phrasing == "rehearsal" for e in out)


def test_training_set_mixes_new_previous_and_general():
    new = [FactSpec("The capital of A is B.", id="new")]
    old = [FactSpec("The capital of C is D.", id="old")]
    general = [Example("hi", "hello", "rehearsal")]
    cfg = SynthesisConfig(n_train=5, n_previous=2)
    train, heldout = build_training_set(new, old, general, cfg)
    assert sum(e.fact_id == "new" for e in train) == 5
    assert sum(e.fact_id == "old" for e in train) == 2
    assert train[-1] == general[0]
    assert heldout and all(e.fact_id == "new" for e in heldout)


def test_config_and_fact_validation():
    with pytest.raises(ValueError):
        SynthesisConfig(n_train=0)
    with pytest.raises(ValueError):
        FactSpec("   ")
