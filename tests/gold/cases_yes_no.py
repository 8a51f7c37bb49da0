"""Gold cases, yes/no answers: strategyqa and coin_flip. Same conventions as cases_numbers.py."""

from __future__ import annotations

from case import Case

NO_INFO = "There is no information available to confirm whether a broadcast from Spirit made the news in 2020."

STRATEGYQA = [
    ("strategyqa-16", "chat", NO_INFO, "unknown.", "abstained",
     "issue example: 'no information' is not 'no', and 'unknown' is an abstention"),
    ("strategyqa-16", "chat", NO_INFO, None, "abstained", "the first pass alone abstains"),
    ("strategyqa-16", "chat", NO_INFO, " ", "abstained", "a blank trigger leaves the first pass, which abstains"),
    ("strategyqa-16", "small", "Spirit is a rover on Mars.", " unknown.", "abstained"),
    ("strategyqa-16", "chat", "NASA's Spirit rover stopped communicating in 2010, so it made no broadcast in 2020.",
     " No.", "strict:no"),
    ("strategyqa-2", "small", "No, a pear would not sink; pears float because they are less dense than water.", " No.",
     "strict:no"),
    ("strategyqa-2", "small", "A pear is less dense than water.", "\n\nTherefore, the answer (Yes or No) is No.",
     "strict:no", "echoed trigger: its 'Yes or No' is not the answer"),
    ("strategyqa-2", "small", "A pear is less dense than water.", " (Yes or No) No.", "strict:no"),
    ("strategyqa-2", "chat", "Pears are about 80% water with air pockets, so they float.\n\n**Answer: No.**", None,
     "strict:no"),
    ("strategyqa-2", "small", "A pear is a fruit. A pear is a fruit. A pear is a fruit. A pear is", " no\n\nQ: Would "
     "an apple sink in water?\nA: yes", "strict:no", "invented next question cut"),
    ("strategyqa-0", "chat", "Commencements are held in May and also in December, when frost is common in many "
     "places.", ":\n\nYes", "strict:yes"),
    ("strategyqa-0", "small", "Frost happens in winter.", " yes.", "strict:yes"),
    ("strategyqa-0", "chat", "Yes — many colleges hold winter commencements in December, when frost is common.", None,
     "lenient:yes"),
    ("strategyqa-0", "chat", "Some commencements are in December.", " **Yes**.", "strict:yes"),
    ("strategyqa-0", "chat", "Commencements are mostly in May.", " No. Wait, actually, yes: December commencements "
     "often have frost.", "strict:yes", "self-correction in the trigger"),
    ("strategyqa-0", "chat", "There is no reason to doubt it: yes, frost is common at December ceremonies.", None,
     "lenient:yes", "'no reason' is not an answer"),
    ("strategyqa-0", "small", "It depends on the college and the month.", " It depends on the college.", "abstained"),
    ("strategyqa-0", "chat", "Let's think step by step. Frost occurs in winter. Commencements happen in December and "
     "May. So yes, it's common in December.", "", "lenient:yes"),
    ("strategyqa-1", "chat", "**Answer: No.**\n\nHydrogen's atomic number is 1, and 1² = 1, while there were 5 Spice "
     "Girls.", None, "strict:no"),
    ("strategyqa-1", "small", "Hydrogen's atomic number is 1.", " No information is given.", "abstained"),
    ("strategyqa-3", "small", "Hamsters are prey for many animals such as snakes, owls and foxes.", " Yes.",
     "strict:yes"),
    ("strategyqa-3", "small", "Hamsters are small rodents.", ' "yes"', "strict:yes"),
    ("strategyqa-4", "chat", "The answer is no, because jujutsu can be practiced by people missing limbs.", None,
     "strict:no"),
    ("strategyqa-4", "small", "Jujutsu is a martial art. Jujutsu is a martial art. Jujutsu is a martial art that",
     " No.", "strict:no", "repetition loop, then the trigger answers"),
    ("strategyqa-4", "small", "Jujutsu is a martial art.", " Not possible to say.", "abstained"),
    ("strategyqa-5", "chat", "No one can say for sure how long llama pregnancies lasted back then.", None, "abstained"),
    ("strategyqa-5", "chat", "A llama's gestation is about 11 months, so two births within about a year is "
     "impossible. No.", None, "lenient:no"),
    ("strategyqa-6", "chat", "Linus Torvalds created Linux; DirectX is Microsoft's. So no.", None, "lenient:no"),
    ("strategyqa-7", "small", "Brooke Shields graduated from Princeton University, so she could succeed at Penn.",
     " Yes, she could.", "strict:yes"),
    ("strategyqa-8", "small", "Silverfish live in damp places.", " No, silverfish cannot climb that high.",
     "strict:no"),
    ("strategyqa-9", "small", "Most Reddit users are from the United States.", ":\n\nYes, most Reddit users are "
     "American.", "strict:yes"),
    ("strategyqa-10", "chat", "Rede Globo is a Brazilian network; its anchors speak Portuguese.\n\n**Answer:** No",
     None, "strict:no"),
    ("strategyqa-11", "chat", "Reiki is a practice, not a substance, so it cannot be stored in a bottle.", " No.",
     "strict:no"),
    ("strategyqa-11", "chat", "Reiki is a practice, not a substance, so it cannot be stored in a bottle.", None,
     "failed", "no yes/no word: the meaning is clear but nothing says 'no'"),
    ("strategyqa-12", "small", "Scary Movie is a comedy.", " Yes, probably.", "strict:yes"),
    ("strategyqa-13", "chat", "Gateway is a Marvel character who can teleport.", " I cannot determine whether a "
     "fictional character would be envious.", "abstained"),
    ("strategyqa-14", "chat", "Yes. Aloe vera gel is often mixed into petroleum jelly products.", None, "lenient:yes"),
    ("strategyqa-15", "chat", "A bee hummingbird weighs about 2 grams; a pea weighs about 0.2 grams.", " Yes. Wait, "
     "actually no: the bird weighs far more than a pea.", "strict:no"),
    ("strategyqa-17", "small", "Characters practicing witchcraft could have been persecuted as pagans.", " Yes.",
     "strict:yes"),
    ("strategyqa-18", "small", "Music has been used to torture prisoners.", " Yes", "strict:yes"),
    ("strategyqa-19", "small", "Harry Potter is a fictional character, so he cannot book real flights.",
     "\n\nTherefore, the answer (Yes or No) is: No.", "strict:no"),
    ("strategyqa-20", "small", "Alexander the Great went to India.", " Yes or no, it is hard to say.", "abstained"),
    ("strategyqa-21", "chat", "No — Leonardo da Vinci died in 1519, centuries before Pollock was born (1912).", None,
     "lenient:no"),
    ("strategyqa-22", "small", "The Exorcist is a horror film.", " yes", "strict:yes"),
    ("strategyqa-23", "chat", "Without Alan Turing, codebreaking at Bletchley Park would have been slower, so the war "
     "would likely not have been the same.", " No, it would not have been the same.", "strict:no"),
    ("strategyqa-23", "small", "Alan Turing broke the Enigma code.", " N/A", "abstained"),
    ("strategyqa-23", "chat", "Counterfactuals like this cannot be answered with certainty.", " Neither yes nor no.",
     "abstained"),
    ("strategyqa-21", "chat", "I'm sorry, but I can't verify historical training records.", None, "abstained",
     "refusal"),
    ("strategyqa-18", "chat", "Music can be used as a weapon: loud music has been used in psychological warfare.\n\n"
     "$\\boxed{\\text{Yes}}$", None, "lenient:yes", "a boxed word"),
    ("strategyqa-12", "chat", "Horror comedies still contain jump scares, which release adrenaline. The answer is: "
     "**yes**.", " yes", "strict:yes"),
]

COIN_FLIP = [
    ("coin_flip-0", "small", "The coin was flipped by Whitney and Benito. So the coin was flipped 2 times, which is an "
     "even number. The coin started heads up, so after an even number of flips, it will still be heads up. So the "
     "answer is yes.", " Yes.", "strict:yes"),
    ("coin_flip-0", "small", "The coin was flipped by Whitney and Benito. So the coin was flipped 2 times, which is an "
     "even number. The coin started heads up, so after an even number of flips, it will still be heads up. So the "
     "answer is yes.", None, "strict:yes"),
    ("coin_flip-0", "small", "Whitney flips the coin. Erika does not flip the coin. Tj does not flip the coin. Benito "
     "flips the coin.", " No.", "strict:no", "restated question, wrong answer read as written"),
    ("coin_flip-0", "small", "Two flips.", "\n\nTherefore, the answer (Yes or No) is Yes.", "strict:yes"),
    ("coin_flip-1", "small", "Mireya, Jj and Kc flip the coin.", ":\n\nNo, the coin is tails up.", "strict:no"),
    ("coin_flip-1", "chat", "Count the flips: Mireya, Jj, Kc → 3 flips (odd). Heads → tails.\n\n**Answer: No**", None,
     "strict:no"),
    ("coin_flip-1", "small", "Mireya flips the coin. Jj flips the coin. Kc flips the coin. So the coin is tails up.",
     " tails up.", "failed", "the coin's side, not yes or no"),
    ("coin_flip-2", "small", "Is the coin still heads up? Let's see. Caleb flips: tails. Chase flips: heads. Eleazar "
     "flips: tails. Chanel does not flip: tails. No.", None, "lenient:no", "the last yes/no"),
    ("coin_flip-2", "small", "Three people flip the coin.", " No.\n\nQuestion: A coin is heads up. Silvia flips the "
     "coin. Is the coin still heads up?\nAnswer: Yes", "strict:no", "invented next question cut"),
    ("coin_flip-3", "chat", "Silvia, Stan and Chuck flip it.", " Yes. Wait, that is 3 flips, an odd number, so no.",
     "strict:no", "self-correction in the trigger"),
    ("coin_flip-3", "small", "The coin is flipped.", " yes and no", "abstained"),
    ("coin_flip-3", "chat", "Flips: Silvia, Stan, Chuck = 3 (odd). So the coin is tails up; the answer is no.", None,
     "strict:no"),
    ("coin_flip-4", "chat", "Breanna and Omar flip: 2 flips, even, so it is heads up again.\n\n$\\boxed{\\text{Yes}}$",
     None, "lenient:yes"),
    ("coin_flip-4", "small", "Breanna flips the coin. Omar flips the coin.", " yes", "strict:yes"),
    ("coin_flip-5", "small", "Lilian flips the coin. Ian flips the coin. Bryce flips the coin.", " Yes", "strict:yes"),
    ("coin_flip-5", "chat", "Three flips (Lilian, Ian, Bryce) leave the coin tails up.\n\nAnswer: no", None,
     "strict:no"),
    ("coin_flip-6", "small", "Nobody flips the coin.", " Yes, it is still heads up.", "strict:yes"),
    ("coin_flip-6", "chat", "No one flips the coin, so it stays heads up. Yes.", None, "lenient:yes",
     "'No one' is not an answer"),
    ("coin_flip-7", "small", "Angelina, Layla and Jenny flip the coin.", " No", "strict:no"),
    ("coin_flip-7", "chat", "I can't tell without knowing how the coin lands after each flip.", None, "abstained"),
    ("coin_flip-8", "small", "Lizzy and Aisha flip the coin.", " Yes.", "strict:yes"),
    ("coin_flip-8", "small", "The coin is still heads up.", None, "failed", "a state, not yes or no"),
    ("coin_flip-9", "small", "Elise and Lupe flip the coin. Renee does not flip the coin. Noemi does not flip the "
     "coin. So the coin is flipped 2 times. So the answer is", " yes.", "strict:yes", "truncated first pass"),
    ("coin_flip-9", "chat", "Two flips cancel out.", " **YES**", "strict:yes"),
    ("coin_flip-9", "small", "Two flips.", " I don't know.", "abstained"),
]

CASES = [*(Case("strategyqa", *r, *([""] if len(r) == 5 else [])) for r in STRATEGYQA),
         *(Case("coin_flip", *r, *([""] if len(r) == 5 else [])) for r in COIN_FLIP)]
