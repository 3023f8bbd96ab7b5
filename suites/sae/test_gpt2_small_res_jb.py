"""gpt2-small-res-jb, blocks.8.hook_resid_pre: L0 about 60-69, CE loss recovered about 0.92-0.97
(SAELens tutorial outputs, approximate; /work/shared/reference/known-results.md). Skips with
the reason when the SAE or GPT-2 weights are not available offline."""

from __future__ import annotations

import pytest
import torch

from mi_assert import ModelUnavailableError, assert_sae_reconstruction, load_model
from mi_assert.sae import load_sae


@pytest.fixture(scope="module")
def gpt2_and_sae():
    try:
        sae = load_sae("gpt2-small-res-jb", sae_id="blocks.8.hook_resid_pre")
        model = load_model("gpt2", backend="transformer_lens")
    except ModelUnavailableError as exc:
        pytest.skip(str(exc))
    return model, sae


#: 36 distinct hand-written passages, no sentence shared between any two of them. The bootstrap
#: resamples prompts as independent units (assert_sae_reconstruction takes no cluster/units
#: argument), so every prompt is its own passage: an earlier version built 32 passages from
#: shuffled triples of 12 sentences, whose shared sentences made the "independent" units
#: correlated and the interval too narrow.
PASSAGES = [
    ("The committee met on Tuesday to discuss the new budget for the city's public "
     "schools. Several parents spoke during the hearing, asking the members to keep the "
     "music program and to hire more teachers for the overcrowded classes. A final vote is "
     "expected next month."),
    ("After the storm passed, volunteers cleared fallen trees from the roads near the "
     "river. By the evening most streets were open again, although many homes on the "
     "eastern side of town were still waiting for the power to return. Crews worked "
     "through the night."),
    ("Researchers found that the protein folds differently when the temperature rises. The "
     "team now plans to test whether the same change happens inside living cells, which "
     "could explain why some patients react badly to a fever. The results were published "
     "on Friday."),
    ("She opened the old wooden box and found a stack of letters written by her "
     "grandfather. Most of them were addressed to a woman she had never heard of, and the "
     "last one was dated only a week before the wedding. She read them all before dawn."),
    ("The company reported higher profits this quarter, driven by strong sales in Asia. "
     "Its shares rose sharply in early trading, but analysts warned that rising shipping "
     "costs could reduce the margins during the second half of the year. The chief "
     "executive declined to comment."),
    ("In the final minutes of the match, the goalkeeper made two remarkable saves. The "
     "crowd stood and cheered as the whistle blew, and the coach later said it was the "
     "best performance he had seen from the young player. His team won the cup on "
     "penalties."),
    ("He learned to play the violin as a child and later joined the national orchestra. On "
     "weekends he still teaches a small group of students in the back room of a music shop "
     "that his uncle has owned for thirty years. He never misses a lesson."),
    ("The museum will host an exhibition of modern sculpture from artists across Europe. "
     "Visitors will be able to walk through a large garden of steel and stone figures, and "
     "guided tours will be offered every morning in four languages. Entry is free for "
     "children under twelve."),
    ("Farmers in the valley rely on the spring rains to water their fields of wheat. This "
     "year the rain came late, so many of them are worried that the harvest will be "
     "smaller and that prices at the market will climb again. Some have already sold their "
     "cattle."),
    ("The software update fixes several security problems and improves battery life. Users "
     "who installed the earlier version are advised to restart their phones after the "
     "download, because some settings will only take effect after a reboot. The download "
     "takes about ten minutes."),
    ("Historians disagree about the causes of the war and the role of its leaders. Some "
     "point to economic rivalry between the great powers, while others argue that a series "
     "of misunderstandings turned a local crisis into a wider conflict. The debate is "
     "unlikely to end soon."),
    ("Our train was delayed for an hour because of a signal failure outside the station. "
     "The conductor apologised several times over the speakers, and the railway company "
     "later offered every passenger a voucher for a free return journey. Few people "
     "bothered to claim it."),
    ("The bakery on the corner opens at six every morning, and a line often forms before "
     "the doors are unlocked. Its owner says the secret of the bread is patience, since "
     "the dough rests for a full day before it goes into the oven."),
    ("A small boat left the harbour at dawn, carrying supplies to the island's lighthouse "
     "keeper. The sea was calm for most of the trip, but a thick fog rolled in near the "
     "rocks and the crew had to slow down and sound the horn."),
    ("The city council approved a plan to build new bicycle lanes along the main avenue. "
     "Supporters say the lanes will make the streets safer for children, while some shop "
     "owners fear that losing parking spaces will hurt their business. Construction could "
     "begin in the autumn."),
    ("My neighbour has kept bees in his garden for more than twenty years. Every autumn he "
     "collects the honey in glass jars and leaves a few of them on our doorstep, along "
     "with a handwritten note about the flowers the bees visited. We have never been "
     "stung."),
    ("The hospital introduced a new system for scheduling appointments last month. "
     "Patients can now choose a time online instead of waiting on the phone, and the staff "
     "say the number of missed visits has already fallen by almost a third. Other clinics "
     "may soon follow."),
    ("Astronomers have spotted a comet that will pass close enough to be seen without a "
     "telescope. It should be brightest in the western sky just after sunset next month, "
     "and clear skies are expected in most parts of the country. Amateur clubs are "
     "planning viewing nights."),
    ("The village library was saved from closing after residents raised money to pay for "
     "its roof. Volunteers now run it three days a week, and the shelves have been filled "
     "with books donated by families from the surrounding farms. It is busier now than "
     "ever before."),
    ("During the long winter, the old man carved small animals from pieces of driftwood. "
     "He gave most of them away to the children in the street, who lined them up on their "
     "window sills like a tiny wooden zoo facing the sea."),
    ("The restaurant changes its menu with the seasons and buys most of its vegetables "
     "from nearby farms. In the summer the tables on the terrace are booked weeks in "
     "advance, especially on evenings when a local band plays jazz. The chef trained in "
     "Lyon for five years."),
    ("Engineers are testing a bridge design that can flex slightly during an earthquake. "
     "Instead of resisting the shaking, the structure moves with it, and sensors along the "
     "deck send data to a control room that watches for damage. The first trials begin in "
     "May."),
    ("The teacher asked each student to bring an object that told a story about their "
     "family. One boy brought a broken watch, another a faded photograph, and a quiet girl "
     "at the back of the room brought a jar of sand from a distant beach."),
    ("Heavy snow closed the mountain pass for the third time this winter. Truck drivers "
     "waited in a long queue at the bottom of the road, and the police advised travellers "
     "to take the longer route through the valley until the weekend. Hotels in the valley "
     "were full."),
    ("A new study suggests that short walks after meals can help control blood sugar. The "
     "effect was strongest in people who walked for at least ten minutes, and the "
     "researchers say the habit is easy to add to a busy daily routine. Even a stroll "
     "around the block seems to help."),
    ("The orchestra's new conductor arrived from Vienna with a reputation for long "
     "rehearsals. The musicians were nervous at first, but after the opening concert, "
     "which ended with a standing ovation, most of them said the work had paid off. "
     "Tickets for next season sold out in a day."),
    ("The river that runs through the old town used to flood almost every spring. Twenty "
     "years ago the city built a series of walls and gates along its banks, and since then "
     "the water has stayed within them even in the wettest years."),
    ("When the factory closed, hundreds of workers had to look for new jobs. Some "
     "retrained as nurses or electricians, others moved away to larger cities, and a few "
     "of them opened small shops in the empty buildings along the high street."),
    ("The chess tournament attracted players from more than forty countries this year. The "
     "favourite lost an early game to a teenager from a small club, and the room fell "
     "silent as the young player calmly shook hands and left the table. Nobody had "
     "expected such a result."),
    ("Archaeologists digging near the coast uncovered the remains of a Roman villa. The "
     "floors were decorated with colourful mosaics of fish and birds, and a clay pot found "
     "in the kitchen still held traces of olive oil and wine. The site will open to the "
     "public next year."),
    ("The airline announced that it will add direct flights between the two capitals from "
     "next spring. Tickets go on sale next week, and the company expects strong demand "
     "from business travellers as well as from families visiting relatives. Prices have "
     "not yet been announced."),
    ("My sister spent the summer working on a farm in the north, where she learned to milk "
     "cows and drive a tractor. She came home tired but happy, with sunburnt arms and a "
     "notebook full of recipes from the farmer's wife."),
    ("The national park has reopened its hiking trails after a month of repairs. Rangers "
     "replaced several wooden bridges that were washed away by floods, and they remind "
     "visitors to carry water because the springs are dry this year. Camping is allowed "
     "only in marked areas."),
    ("A local choir is looking for new members to join before the holiday concerts. No "
     "experience is needed, the director says, only a willingness to practise every "
     "Thursday evening in the church hall and to learn the songs by heart. Rehearsals "
     "begin in early October."),
    ("The detective studied the footprints in the mud beside the garden gate. They were "
     "too small to belong to the gardener and too large for the maid, and they led "
     "straight to the window that had been found open that morning. Someone had come in "
     "from the garden."),
    ("Scientists measuring the ice sheet reported that it is thinning faster than "
     "expected. Warmer ocean water is melting the glaciers from below, they explained, and "
     "the change could raise sea levels along coasts around the world. Their report calls "
     "for urgent action."),
]
N_TOKENS = 40  # every passage is cut to the same length so prompts stack into one batch


def _passages(tokenizer) -> torch.Tensor:
    """One row per passage: BOS + its first N_TOKENS tokens (each passage is ~45-55 tokens)."""
    rows = []
    for text in PASSAGES:
        ids = tokenizer(text)["input_ids"][:N_TOKENS]
        if len(ids) < N_TOKENS:
            raise ValueError(f"passage shorter than {N_TOKENS} tokens ({len(ids)}): {text!r}")
        rows.append([tokenizer.bos_token_id, *ids])
    tokens = torch.tensor(rows)
    assert len({tuple(r) for r in tokens.tolist()}) == len(PASSAGES), "passages must be distinct"
    return tokens


def test_passages_are_distinct():
    """No two passages share a sentence (runs offline, without GPT-2)."""
    sentences = [s for p in PASSAGES for s in p.replace("? ", ". ").split(". ")]
    assert len(PASSAGES) >= 32 and len(set(PASSAGES)) == len(PASSAGES)
    assert len(set(sentences)) == len(sentences)


def test_layer8_reconstruction_matches_published(gpt2_and_sae):
    # Published figures are on OpenWebText; these hand-written passages differ, so the bounds are
    # wider than the published ranges (L0 60-69, CE recovered 0.92-0.97), set before any run.
    model, sae = gpt2_and_sae
    tokens = _passages(model.tokenizer)
    assert_sae_reconstruction(sae, model, tokens, l0_range=(40, 90), min_ce_loss_recovered=0.85)
