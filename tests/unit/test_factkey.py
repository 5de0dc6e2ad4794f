from agentmem.factkey import fact_key, fact_slot, normalize_statement


def test_contradicting_statements_share_a_key():
    assert fact_key("The capital of Zorbania is Quellmark.") == fact_key("the capital of Zorbania is Lumen")
    assert fact_key("The capital of Zorbania is Quellmark.") == "capital of zorbania is"


def test_different_relations_have_different_keys():
    assert fact_key("Alice lives in Paris.") != fact_key("Alice works at Acme.")
    assert fact_key("Alice lives in Paris.") == "alice lives in"


def test_no_key_without_a_linking_verb_or_object():
    assert fact_key("Hello there") is None
    assert fact_key("is blue") is None
    assert fact_key("The sky is") is None


def test_normalize_statement():
    assert normalize_statement("The  Zorbanian flag, is RED!") == "zorbanian flag is red"


def test_slot_splits_subject_and_relation():
    assert fact_slot("The capital of Zorbania is Quellmark.") == ("capital of zorbania", "is")
    assert fact_slot("Alice lives in Paris.") == ("alice", "lives in")
    assert fact_slot("Nothing here") is None
