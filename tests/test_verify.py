from types import SimpleNamespace

import pytest

from rag.text import WORD
from rag.verify import Evidence, is_decline, split_answer, supports, verify
from rag.verify.rules import names, quantities


def holds(passage: str, claim: str, question: str = "", article: str = "") -> bool:
    premise = frozenset(w.lower() for w in WORD.findall(question))
    return supports(claim, Evidence(passage, article, premise))

PASSAGES = [
    SimpleNamespace(text="A total of around 10,000 North Korean troops are currently in Russia, a spokesperson for the Pentagon said."),
    SimpleNamespace(text="Seoul and its allies assess that the number has increased to 11,000, a South Korean official said."),
    SimpleNamespace(text="Zelenskyy said there are upwards of 12,000 North Koreans in the country."),
]


def render(text: str):
    v = verify(text, PASSAGES)
    return v.render(), v.declined, v.dropped


def test_key_terms_are_numbers_and_names():
    claim = "The Pentagon said 10,000 troops are in Russia."
    assert quantities(claim) == {"10000"}
    assert {"pentagon", "russia"} <= names(claim) and "the" not in names(claim)


def test_support_needs_every_number_and_name():
    assert holds(PASSAGES[0].text, "The Pentagon says 10000 North Korean troops are in Russia.")
    assert not holds(PASSAGES[0].text, "The Pentagon says 11,000 troops are in Russia.")
    assert not holds(PASSAGES[0].text, "Argentina won the World Cup.")


def test_names_from_the_question_need_only_be_in_the_passages_article():
    passage = "The missile flew for 86 minutes and reached an altitude of 7,000 km, Japan said."
    article = "North Korea fired an ICBM on Thursday. " + passage
    claim = "The North Korean ICBM reached an altitude of 7,000 km."
    question = "What altitude did the North Korean ICBM reach?"
    assert not holds(passage, claim)  # the names are not in the passage itself
    assert holds(passage, claim, question, article)
    assert not holds(passage, claim, question, passage)  # nor in its article: still unsupported
    assert not holds(passage, "The Chinese ICBM reached an altitude of 7,000 km.", question, article)
    assert not holds(passage, "The North Korean ICBM reached an altitude of 8,000 km.", question, article)


def test_valid_markers_are_kept_and_renumbered_in_order():
    (text, order), declined, _ = render("Seoul says 11,000 [2], while the Pentagon says 10,000 [1].")
    assert text == "Seoul says 11,000 [1], while the Pentagon says 10,000 [2]."
    assert order == [1, 0] and not declined


def test_invented_marker_is_removed_or_repaired():
    (text, order), _, _ = render("Zelenskyy said upwards of 12,000 [7].")
    assert text == "Zelenskyy said upwards of 12,000 [1]." and order == [2]


def test_wrong_citation_is_moved_to_the_supporting_passage():
    (text, order), _, _ = render("The Pentagon said about 10,000 troops are in Russia [2].")
    assert order == [0] and text.endswith("[1].")


def test_unsupported_claim_is_dropped_and_answer_declines_when_nothing_is_left():
    (text, order), declined, dropped = render("Argentina won the 2022 World Cup [1].")
    assert text == "" and order == [] and declined and dropped


def test_marker_before_text_style_cites_what_follows():
    (text, order), _, _ = render("[1] 10,000 [2] 11,000")
    assert text == "10,000 [1] 11,000 [2]" and order == [0, 1]


def test_source_talk_and_meta_sentences_become_markers():
    (text, _), _, _ = render("According to passage [3], Zelenskyy said 12,000. This is stated in [3].")
    assert text == "Zelenskyy said 12,000 [1]."
    (text, _), _, _ = render("Zelenskyy said 12,000 [3]. This increase is reported in both passage [3] and passage [1].")
    assert text == "Zelenskyy said 12,000 [1]."  # no "both passage and passage"; [1] does not hold 12,000
    (text, _), _, _ = render("Zelenskyy said 12,000 [3]. The count was reported by Zelenskyy [3].")
    assert text.endswith(". The count was reported by Zelenskyy [1].")  # a statement, not a pointer


@pytest.mark.parametrize("text", ["The articles don't say.", "The passages do not mention who won.",
                                  "There is no information about that."])
def test_declines_are_recognised(text):
    assert is_decline(text)
    (rendered, order), declined, _ = render(text)
    assert declined and order == [] and rendered


def test_statement_is_not_a_decline():
    assert not is_decline("The Pentagon says 10,000 troops are in Russia.")


def test_split_answer_attaches_trailing_marker_to_previous_sentence():
    sentences = split_answer("The Pentagon said 10,000. [1] Seoul said 11,000 [2].")
    assert [c.markers for c in sentences[0] if c.markers] == [(1,)]
    assert len(sentences) == 2


def test_copied_sentence_without_names_or_numbers_gets_its_source():
    passages = PASSAGES + [SimpleNamespace(text="This is normal diplomacy. This should not raise questions for anyone.")]
    v = verify("This should not raise questions for anyone.", passages)
    assert v.render() == ("This should not raise questions for anyone [1].", [3])


def test_an_abbreviation_before_the_marker_does_not_double_the_full_stop():
    (text, _), _, _ = render("A spokesperson for the Pentagon said 10,000 North Korean troops are in Russia, etc. [1].")
    assert text == "A spokesperson for the Pentagon said 10,000 North Korean troops are in Russia, etc [1]."


def test_an_uncited_sentence_no_passage_holds_is_dropped_even_without_names_or_numbers():
    (text, _), declined, dropped = render(
        "Zelenskyy said 12,000 [3]. This tactic involves deploying large numbers of troops in concentrated attacks.")
    assert text == "Zelenskyy said 12,000 [1]." and not declined
    assert dropped == ["This tactic involves deploying large numbers of troops in concentrated attacks."]


def test_a_short_reply_before_the_cited_sentence_stays():
    (text, _), _, _ = render("Yes. Zelenskyy said 12,000 [3].")
    assert text == "Yes. Zelenskyy said 12,000 [1]."


def test_a_compound_of_names_is_supported_when_each_name_is_there():
    passage = ("Blinken and Sullivan met Andriy Yermak on Tuesday, State Department spokesman "
               "Matthew Miller said in a news release.")
    assert holds(passage, "Matthew Miller described the Blinken-Yermak meeting in a news release.")
    assert not holds(passage, "Matthew Miller described the Blinken-Lavrov meeting in a news release.")


@pytest.mark.parametrize("claim, ok", [
    ("Ukraine's troops hold 600 square kilometres.", True),  # "sq km" is "square kilometres"
    ("Ukraine's troops hold 3,000 square kilometres.", False),  # 3,000 is there, but it counts people
    ("Ukraine's troops hold 600 km.", False),  # a length is not an area
    ("The missile flew for 73 minutes.", True),
    ("The missile flew 73 km.", False),
])
def test_a_number_with_a_unit_must_measure_the_same_thing_in_the_passage(claim, ok):
    passage = ("More than 3,000 of them moved toward Kursk, where Ukraine's troops are occupying some 600 sq km "
               "of land. The missile flew for 73 minutes.")
    assert holds(passage, claim) is ok


@pytest.mark.parametrize("claim, ok", [
    ("Zelenskyy's troops control several hundred square kilometres of Kursk [1].", False),
    ("Zelenskyy's troops control some 600 sq km of Kursk [1].", True),
    ("Several hundred special forces are among them [1].", True),
    ("Hundreds of officers are among them [1].", False),
])
def test_a_quantity_in_words_must_be_in_the_passage(claim, ok):
    passage = ("Zelenskyy said his troops are occupying some 600 sq km of land in Kursk. There are upwards of 12,000 "
               "North Koreans, including several hundred special forces, 500 officers and three generals.")
    assert holds(passage, claim) is ok


@pytest.mark.parametrize("claim, ok", [
    ("The name of North Korea's defence minister is Kim Yong-hyun [1].", False),
    ("Kim Yong-hyun is North Korea's defence minister.", False),
    ("South Korea's defence minister is Kim Yong-hyun [1].", True),
    ("Kim Yong-hyun, South Korea's defence minister, spoke of the North Korean troops [1].", True),
    ("North Korean leader Kim Jong Un sent the troops [1].", True),
    ("Austin met Kim Yong-hyun in Washington [1].", True),
])
def test_a_name_is_not_moved_from_south_korea_to_north_korea(claim, ok):
    passage = ("Austin was speaking in Washington with South Korean Defense Minister Kim Yong-hyun, as concerns "
               "grow about the North Korean troops that North Korean leader Kim Jong Un sent.")
    assert holds(passage, claim) is ok


def test_a_sentence_copied_from_a_passage_is_cited_to_it_not_to_one_sharing_its_names():
    passages = [SimpleNamespace(text="Kyslytsya said 10,000 North Korean troops in Russia are trained in the Far East "
                                     "by instructors, while fighting goes on in Ukraine."),
                SimpleNamespace(text="The 10,000 North Korean troops are to be trained in eastern Russia before being "
                                     "deployed, but some already might be in Ukraine.")]
    claim = "The 10,000 North Korean troops are to be trained in eastern Russia before being deployed in Ukraine [1]."
    assert holds(passages[0].text, claim)  # the names and number alone do not tell the passages apart
    _, cited = verify(claim, passages).render()
    assert cited == [1]  # the second passage


@pytest.mark.parametrize("passage, claim, ok", [
    # The nearest compass place before a name is the person's; another one earlier in the sentence is not.
    ("South Korean officials said North Korean leader Kim Jong Un ordered the launch.",
     "North Korean leader Kim Jong Un ordered the launch [1].", True),
    # Whole words: a shared first four letters do not make "Austin" "Australia".
    ("Australia's foreign minister met officials in Canberra.", "Austin met officials in Canberra [1].", False),
    ("Russian troops advanced, the Ukrainian army said.", "Russia's troops advanced, Ukraine's army said [1].", True),
    # Names in any script.
    ("Mayor Hanna Zdanowska of Łódź opened the hall.", "Hanna Zdanowska of Łódź opened the hall [1].", True),
    ("Mayor Hanna Zdanowska of Łódź opened the hall.", "Hanna Zdanowska of Kraków opened the hall [1].", False),
])
def test_names_are_whole_words_in_any_script(passage, claim, ok):
    assert holds(passage, claim) is ok


def test_every_rule_has_a_name_and_says_what_it_catches():
    from rag.verify import RULES

    assert {"numbers", "measures", "names", "repair", "kind_of_answer"} <= set(RULES)
    assert all(len(doc) > 40 for doc in RULES.values())


def test_a_rule_switched_off_no_longer_rejects():
    passage, claim = "About 10,000 troops are in Russia, the Pentagon said.", "The Pentagon said 11,000 troops [1]."
    assert not supports(claim, Evidence(passage))
    assert supports(claim, Evidence(passage), off=frozenset({"numbers"}))


def _checked(text: str, passage: str, question: str, about: str = "") -> str:
    from datetime import date

    from rag.ingest import ArticleMeta

    meta = ArticleMeta(published=date.fromisoformat(about)) if about else ArticleMeta()
    return verify(text, [SimpleNamespace(text=passage, meta=meta)], question, asked=question).render()[0]


@pytest.mark.parametrize("claim, passage, about, ok", [
    # The sentence stating the answer ties it to another year.
    ("Germany was the runner-up of the 2010 World Cup [1].",
     "World Cup 2010 winner - Spain. EURO 2012 top scorer - Mario Gomez. World Cup 2014 winner - Germany.", "", False),
    ("Spain won the 2010 World Cup [1].",
     "World Cup 2010 winner - Spain. EURO 2012 top scorer - Mario Gomez. World Cup 2014 winner - Germany.", "", True),
    # Nothing ties the passage to the year asked: neither its text nor its article's date.
    ("Geraint Thomas won the 2010 World Cup [1].", "Geraint Thomas won the World Cup on Sunday.", "2018-07-29", False),
    # The article's date gives the year.
    ("Egan Bernal won the 2010 World Cup [1].", "Egan Bernal won the World Cup on Sunday.", "2010-07-28", True),
])
def test_a_question_about_a_year_is_answered_from_a_passage_about_that_year(claim, passage, about, ok):
    assert bool(_checked(claim, passage, "Who won the 2010 World Cup?", about)) is ok


@pytest.mark.parametrize("claim, ok", [
    ("Sepp Blatter is the president of FIFA [1].", False),
    ("Sepp Blatter is currently president of FIFA [1].", False),
    ("Sepp Blatter was the president of FIFA [1].", True),  # the past tense is what the passage says
    ("Sepp Blatter is a former president of FIFA [1].", True),
])
def test_a_former_title_holder_is_not_the_present_one(claim, ok):
    passage = "Sepp Blatter, the former president of FIFA, told a Swiss newspaper the vote was a mistake."
    assert bool(_checked(claim, passage, "Who is the president of FIFA?")) is ok


def test_the_questions_own_names_may_come_from_another_shown_passage_when_this_one_states_the_fact():
    from rag.ingest import ArticleMeta

    passages = [SimpleNamespace(text="Manchester United are out of Europe after a defeat to Bayern at Old Trafford.",
                                meta=ArticleMeta(source="Sporting News")),
                SimpleNamespace(text="United out of Europe after defeat to Bayern Munich.",
                                meta=ArticleMeta(source="The Independent"))]
    question = "What team was eliminated, as reported by both The Independent and Sporting News?"
    claim = "Manchester United was eliminated, as reported by both The Independent and Sporting News [1]."
    assert verify(claim, passages, question).render()[1] == [0]
    # A claim of the question's words alone cannot borrow them from another passage.
    assert verify("The Independent and Sporting News [1].", passages[:1] + passages[1:], question).declined


def test_an_answer_must_be_about_what_the_question_names():
    from rag.intent import read
    from rag.verify.question import names_the_topic

    question = "Which team did Shreyanka Patil play for in her last match?"
    assert not names_the_topic(question, read(question), ["Inter Miami won the match against Toronto."])
    named = "Which team did Shreyanka Patil play for, as The Times of India reported?"
    assert not names_the_topic(named, read(named), ["At times Inter Miami looked tired, but they won in the end."])
    assert names_the_topic(question, read(question), ["Shreyanka Patil took two wickets for Bangalore."])
    assert names_the_topic("which city hosted the games?", read("which city"), ["Athens hosted."])  # names nothing
    # a name is matched whole: one name may hold the other, but "Brandon Maxwell" is not the "Maxwell Award"
    award = "Who is the Maxwell Award winner in 2019?"
    assert not names_the_topic(award, read(award), ["2019 CFDA Awards winners: Brandon Maxwell, Rick Owens take honors."])
    assert names_the_topic(award, read(award), ["The 2018 Maxwell Award winner Tua Tagovailoa."])
    assert names_the_topic(question, read(question), ["Patil took two wickets."])


def test_asked_what_two_named_outlets_reported_the_claim_cites_each_that_states_its_answer():
    from rag.ingest import ArticleMeta

    passages = [SimpleNamespace(text="ChatGPT also notched 100 million users per day in March.",
                                meta=ArticleMeta(source="Engadget")),
                SimpleNamespace(text="ChatGPT can complete and debug code, compose music and emulate a Linux computer.",
                                meta=ArticleMeta(source="TechCrunch")),
                SimpleNamespace(text="Bard can write poems.", meta=ArticleMeta(source="TechCrunch"))]
    question = "Which AI tool, reported by both Engadget and TechCrunch, reached 100 million users per day?"
    claim = "ChatGPT reached 100 million users per day, as reported by both Engadget and TechCrunch [1]."
    outlets = [frozenset({0}), frozenset({1, 2})]
    assert verify(claim, passages, question, outlets=outlets).render()[1] == [0, 1]
    assert verify(claim, passages, question, outlets=outlets, off=frozenset({"every_named_outlet"})).render()[1] == [0]
    assert verify(claim, passages, question, outlets=outlets[:1]).render()[1] == [0]  # one outlet named: one cited


def test_an_outlet_written_as_a_web_address_is_no_name_of_the_topic():
    from rag.intent import read
    from rag.verify.question import names_the_topic

    question = "Which player, featured in articles by CBSSports.com, needs 153 yards per game?"
    intent = read(question, ["CBSSports.com"])
    assert names_the_topic(question, intent, ["Tyreek Hill needs to average almost 153 yards per game."])


def test_a_list_entry_of_another_year_is_no_answer_for_the_year_asked():
    passage = ("List of winners of the US Open women's singles ; 2020, Naomi Osaka (Japan), Victoria Azarenka ; "
               "2019, Bianca Andreescu (Canada), Serena Williams (USA)")
    question = "Who won the women's singles U.S. Open in 2019?"
    assert not _checked("Naomi Osaka won the US Open in 2019 [1].", passage, question)
    assert _checked("Bianca Andreescu won the US Open in 2019 [1].", passage, question)


def test_digits_written_on_to_letters_are_a_name_not_a_number():
    passage = "Tesla's third-quarter earnings for 2019 saw the electric car maker post $6.3 billion in revenue."
    question = "What was Tesla's revenue in Q3 2019?"
    assert quantities("Q3 2019 revenue of $6.3 billion, a G7 summit") == {"2019", "6.3billion"}
    article = "Tesla Q3 2019 update. " + passage
    assert holds(passage, "Tesla's revenue in Q3 2019 was $6.3 billion [1].", question, article)
    assert not holds(passage, "Tesla's revenue in Q3 2019 was $6.4 billion [1].", question, article)


def test_the_role_a_question_asks_about_must_be_named_in_a_cited_article():
    from rag.verify.question import holds_role

    question = "Who was the runner-up of the 2010 World Cup?"
    assert not holds_role(question, ["World Cup 2010 winner - Spain. World Cup 2014 winner - Germany."])
    assert holds_role(question, ["The Netherlands finished runner-up, beaten 1-0 in extra time."])
    assert holds_role("Who is the new CEO of Fidelity?", ["Fidelity CEO Abigail Johnson said"])
    assert holds_role('Who is the director of "Pretty Woman"?', ["Director Garry Marshall's beloved movie"])
    # no role asked for: an action, or a number of people
    assert holds_role("Who was named the 2021 National Teacher of the Year?", ["Juliana Urtubey was chosen."])
    assert holds_role("Who are the two of them due to meet?", ["Blinken will meet Yermak."])


def test_a_quantity_in_words_must_be_in_the_passage_too():
    claim = "Police deployed hundreds of officers in the city centre [1]."
    exact = [SimpleNamespace(text="Police deployed 500 officers in the city centre on Saturday.")]
    assert verify(claim, exact).declined  # "hundreds" is not what the passage says
    assert not verify(claim, exact, off=frozenset({"vague_quantities"})).declined
    assert not verify(claim, [SimpleNamespace(text="Police deployed hundreds of officers in the city centre.")]).declined


def test_a_clause_citing_two_passages_may_take_its_facts_from_both():
    passages = [SimpleNamespace(text="Officials in Seoul estimate that 10,000 North Korean troops are in Russia."),
                SimpleNamespace(text="Washington shares the estimate, the Pentagon said.")]
    claim = "Seoul and Washington say 10,000 North Korean troops are in Russia [1][2]."
    assert verify(claim, passages).render()[1] == [0, 1]
    assert verify(claim, passages, off=frozenset({"joint_support"})).declined
