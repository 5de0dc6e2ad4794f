"""bench/consolidate.py's fact loaders, on tiny files of each set's format (never the real shared data)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "consolidate.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_consolidate", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(eval_dir: Path, relative: str, data) -> None:
    path = eval_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def bio_item(evidence: str, *qas: tuple[str, str]) -> dict:
    ref = "\nRef: <Page - Wikipedia 1_2_3>"
    return {"evidence_text": evidence, "page_title": "Page - Wikipedia",
            "qa_pairs": [{"text": q, "output": a + ref} for q, a in qas]}


BIO = [
    bio_item("<Ann Lee - Wikipedia 1_2_3> Ann Lee (born 4 May 1990) is a Welsh rower who rows for Cardiff. She won.",
             ("What sport does Ann Lee do?", "Cricket."),  # not in the first sentence
             ("When was Ann Lee born?", "4 May 1990."),
             ("For which club does Ann Lee row?", "Cardiff.")),
    bio_item("<Bo - Wikipedia 4_5_6> Bo is a poet.", ("Who is Bo?", "A poet.")),  # 4 words: too short
    bio_item("<Cy Dee - Wikipedia 7_8_9> Dr. J. R. Cy Dee is a Canadian judge in Ottawa. He retired.",
             ("Where does Cy Dee sit?", "Information not provided."),
             ("What nationality is Cy Dee?", "Canadian.")),
    bio_item("<Di Ek - Wikipedia 1_1_1> Di Ek is a Swedish singer.", ("What does Di Ek play?", "Guitar.")),
]

PASSAGE_1 = "<Red Sky - Wikipedia> Red Sky is a 2023 Irish drama film directed by Mo Quinn.\nIt premiered in Cork."
PASSAGE_2 = "<Blue - Wikipedia> Blue is a film that nobody has asked any question about here."
PASSAGE_3 = "<Gold - Wikipedia> Gold is a 2021 Peruvian short film by Ana Ruiz. It won a prize."
FILM = {"type": "text2text", "instances": [
    {"text": "Question: Who directed Red Sky?\nAnswer:", "output": "Mo Quinn.", "knowledge": PASSAGE_1},
    {"text": "Question: What is the answer about Blue?\nAnswer:", "output": "Nothing.", "knowledge": PASSAGE_2},
    {"text": "Question: Where did Gold win a prize?\nAnswer:", "output": "Lima.", "knowledge": PASSAGE_3},
    {"text": "Question: When was Red Sky released?\nAnswer:", "output": "2023.", "knowledge": PASSAGE_1},
    {"text": "Question: Who made Gold?\nAnswer:", "output": "Ana Ruiz.", "knowledge": PASSAGE_3},
]}


def test_wiki_bio_rows(bench, tmp_path):
    write(tmp_path, bench.DATASETS["wiki-bio"], BIO)
    rows = bench.load_facts(tmp_path, 2, "wiki-bio")
    assert rows[0] == {"text": "Ann Lee (born 4 May 1990) is a Welsh rower who rows for Cardiff.",
                       "answer": "4 May 1990", "paraphrase": "When was Ann Lee born?",
                       "cloze": "For which club does Ann Lee row?", "cloze_answer": "Cardiff"}
    # initials and "Dr." do not end the sentence; the unanswerable question is skipped; one match: cloze = paraphrase
    assert rows[1] == {"text": "Dr. J. R. Cy Dee is a Canadian judge in Ottawa.", "answer": "Canadian",
                       "paraphrase": "What nationality is Cy Dee?", "cloze": "What nationality is Cy Dee?",
                       "cloze_answer": "Canadian"}


def test_wiki_film_groups_questions_by_passage_in_order(bench, tmp_path):
    write(tmp_path, bench.DATASETS["wiki-film"], FILM)
    rows = bench.load_facts(tmp_path, 2, "wiki-film")
    assert [r["text"] for r in rows] == ["Red Sky is a 2023 Irish drama film directed by Mo Quinn.",
                                         "Gold is a 2021 Peruvian short film by Ana Ruiz."]
    assert (rows[0]["answer"], rows[0]["paraphrase"], rows[0]["cloze"]) == (
        "Mo Quinn", "Who directed Red Sky?", "When was Red Sky released?")
    assert (rows[1]["answer"], rows[1]["paraphrase"]) == ("Ana Ruiz", "Who made Gold?")


@pytest.mark.parametrize(("dataset", "data", "qualifying"), [("wiki-bio", BIO, 2), ("wiki-film", FILM, 2)])
def test_too_few_facts_says_how_many_qualify(bench, tmp_path, dataset, data, qualifying):
    write(tmp_path, bench.DATASETS[dataset], data)
    with pytest.raises(SystemExit, match=f"only {qualifying} facts qualify"):
        bench.load_facts(tmp_path, qualifying + 1, dataset)


@pytest.mark.parametrize("dataset", ["fictional", "wiki-bio", "wiki-film"])
def test_missing_file_exits_with_its_path(bench, tmp_path, dataset):
    with pytest.raises(SystemExit, match="missing .*" + Path(bench.DATASETS[dataset]).name):
        bench.load_facts(tmp_path, 1, dataset)


def test_fictional_rows_unchanged(bench, tmp_path):
    item = {"mem_input": ["The capital of Zorbia is"], "mem_target": ["Quelm"],
            "gen_input": ["Zorbia's capital city is called"]}
    write(tmp_path, bench.DATASETS["fictional"], [item, item])
    assert bench.load_facts(tmp_path, 1) == [{
        "text": "The capital of Zorbia is Quelm.", "answer": "Quelm",
        "cloze": "Complete this sentence: The capital of Zorbia is",
        "paraphrase": "Complete this sentence: Zorbia's capital city is called"}]


@pytest.mark.parametrize(("text", "first"), [
    ("Dr. Ann Smith (born c. 1950) is a judge. She retired.", "Dr. Ann Smith (born c. 1950) is a judge."),
    ("J. R. R. Tolkien was an English writer. He taught.", "J. R. R. Tolkien was an English writer."),
    ("He moved to the U.S. In 2001 he won.", "He moved to the U.S. In 2001 he won."),  # dotted word: kept whole
    ("Ed Jones (Welsh: Ed. Jones) is a singer. He sang.", "Ed Jones (Welsh: Ed. Jones) is a singer."),
    ("She drives the No. 41 car. She won.", "She drives the No. 41 car."),
    ("A film by Mo Quinn\nIt premiered.", "A film by Mo Quinn"),
    ('It was called "Big." It sold well.', 'It was called "Big."'),
])
def test_first_sentence(bench, text, first):
    assert bench.first_sentence(text) == first


def test_long_first_sentence_is_skipped(bench):
    sentence = "Ann Lee is a rower from Cardiff " + "and a rower " * 20 + "in Wales."
    assert bench.passage_fact(sentence, [("Where is Ann Lee from?", "Cardiff")]) is None
    assert bench.passage_fact("Ann Lee is a rower from Cardiff.", [("Where is Ann Lee from?", "Cardiff")])
