"""Gold cases, letter choices: mmlu, commonsenseqa, arc_challenge, aqua, date_understanding,
tracking_shuffled_objects. Same conventions as cases_numbers.py; the item's question (with its
rendered options) and choices come from the data mirror.
"""

from __future__ import annotations

from case import Case


def cases(task: str, rows: list[tuple]) -> list[Case]:
    return [Case(task, *row, *([""] if len(row) == 5 else [])) for row in rows]


MMLU = [
    # mmlu-4185: A decrease in the price ... (A) an increase in demand. (B) a decrease in demand.
    # (C) an increase in the quantity demanded. (D) a decrease in the quantity demanded.  -> C
    (
        "mmlu-4185",
        "small",
        "A decrease in the price of a particular product will result in an increase in the quantity demanded.",
        " (C) an increase in the quantity demanded.",
        "strict:C",
    ),
    (
        "mmlu-4185",
        "small",
        "The price goes down so people buy more.",
        "\n\nTherefore, among A through D, the answer is C.",
        "strict:C",
        "issue example: the echoed trigger's letters are not the answer",
    ),
    (
        "mmlu-4185",
        "small",
        "The price goes down so people buy more.",
        " among A through D, the answer is C.",
        "strict:C",
        "echoed option range",
    ),
    (
        "mmlu-4185",
        "chat",
        "A price change moves us *along* the demand curve, so it changes the quantity demanded, "
        "not demand itself.\n\n**Answer: (C) an increase in the quantity demanded**",
        " (C)",
        "strict:C",
    ),
    (
        "mmlu-4185",
        "chat",
        "A price change moves along the curve; demand itself does not shift, so it is not an "
        "increase in demand. The final answer is $\\boxed{C}$.",
        None,
        "strict:C",
        "boxed letter after a cue; option text (A) in the reasoning is not credited",
    ),
    (
        "mmlu-4185",
        "chat",
        "Lower price → movement along the demand curve → higher quantity demanded.\n\n$$\\boxed{\\text{C}}$$",
        None,
        "lenient:C",
        "a boxed letter with no cue",
    ),
    (
        "mmlu-4185",
        "small",
        "A decrease in the price will result in an increase in demand.",
        " A, B, C, or D.",
        "lenient:A",
        "the trigger only lists the letters; the first pass names option (A)'s text",
    ),
    ("mmlu-4185", "chat", "It is not A: demand does not shift. It is not D either. The answer is C.", None, "strict:C"),
    (
        "mmlu-4185",
        "chat",
        "Options A and C are both plausible, but the textbook distinction points to C.",
        " C.",
        "strict:C",
        "several candidates named; the trigger picks one",
    ),
    (
        "mmlu-4185",
        "chat",
        "This depends on the elasticity of the product, which the question does not give.",
        " either A or C.",
        "abstained",
        "a hedge between two options",
    ),
    # mmlu-13787: usual direction of 'knowledge' in a cell -> (C) From DNA to RNA to protein
    ("mmlu-13787", "small", "The central dogma says information flows from DNA to RNA to protein.", " C.", "strict:C"),
    (
        "mmlu-13787",
        "small",
        "The central dogma says information flows from DNA to RNA to protein.",
        None,
        "lenient:C",
        "the option's text, no letter anywhere",
    ),
    (
        "mmlu-13787",
        "chat",
        "By the central dogma of molecular biology:\n\n**C. From DNA to RNA to protein**",
        None,
        "lenient:C",
        "a letter alone at the start of a line",
    ),
    (
        "mmlu-13787",
        "small",
        "What is the usual direction of 'knowledge' in a cell? What is the usual direction of "
        "'knowledge' in a cell? What is the usual direction of",
        " (D) Random",
        "strict:D",
        "repetition; wrong pick",
    ),
    # mmlu-475: _____ is a system of exchange ... (B) Fair trade
    ("mmlu-475", "small", "Fair trade guarantees producers a living wage.", " (B) Fair trade.", "strict:B"),
    ("mmlu-475", "chat", "The definition given is that of **Fair trade**.\n\nAnswer: B", " B", "strict:B"),
    ("mmlu-475", "chat", "The definition given is that of **Fair trade**.\n\nAnswer: B", None, "strict:B"),
    (
        "mmlu-475",
        "small",
        "Sustainable sourcing is about the environment. Fair trade is about wages.",
        " Fair trade",
        "strict:B",
        "the trigger gives the option's text",
    ),
    # mmlu-7628: Which of these is not a fabric? (B) Celotex
    (
        "mmlu-7628",
        "chat",
        "Velveteen, seersucker and Tencel are all fabrics. Celotex is a brand of insulation board, "
        "so it is not a fabric.\n\nThe answer is **B**.",
        None,
        "strict:B",
    ),
    ("mmlu-7628", "small", "Celotex is not a fabric.", " (B) Celotex", "strict:B"),
    (
        "mmlu-7628",
        "small",
        "Let me think about each one.",
        "\n\n(A) Velveteen (B) Celotex (C) Seersucker (D) Tencel",
        "failed",
        "the trigger echoes the option list; nothing is picked",
    ),
    # mmlu-849: Antibiotics ... all of the following EXCEPT -> (D) reverse transcriptase
    (
        "mmlu-849",
        "chat",
        "Antibiotics target peptidoglycan synthesis, protein synthesis and DNA synthesis in "
        "bacteria. Reverse transcriptase is a viral enzyme, so D is the exception.",
        " D",
        "strict:D",
    ),
    (
        "mmlu-849",
        "chat",
        "Antibiotics target peptidoglycan synthesis (A), protein synthesis (B) and DNA synthesis "
        "(C). Reverse transcriptase is a viral enzyme.",
        None,
        "failed",
        "three letters in parentheses and no pick: nothing to read",
    ),
    ("mmlu-849", "small", "Antibiotics interfere with protein synthesis.", " (B) protein synthesis", "strict:B"),
    # mmlu-2569: percentage of adults overweight in 2016: (A) 10% (B) 20% (C) 40% (D) 80% -> C
    (
        "mmlu-2569",
        "chat",
        "According to the WHO, in 2016 about 39% of adults were overweight, so the closest option is 40%.",
        " C.",
        "strict:C",
    ),
    ("mmlu-2569", "small", "About 40% of adults were overweight.", " 40%", "strict:C", "option text in the trigger"),
    (
        "mmlu-2569",
        "chat",
        "I don't have reliable data for 2016, so I can't say which percentage is right.",
        None,
        "abstained",
    ),
    # mmlu-7685: Schroeder ... (C) playing the piano
    ("mmlu-7685", "small", "Schroeder plays the piano in Peanuts.", " (C) playing the piano.", "strict:C"),
    (
        "mmlu-7685",
        "chat",
        "Schroeder is famous for playing a toy piano, usually Beethoven.\n\n**(C)**",
        None,
        "lenient:C",
        "one letter in parentheses",
    ),
    (
        "mmlu-7685",
        "small",
        "Schroeder is known for playing the piano.",
        " (C) playing the piano.\n\nQuestion: In the "
        "comic strip 'Peanuts' what is Snoopy known for doing?\nAnswer Choices: (A) Dancing (B) Flying an imaginary plane",
        "strict:C",
        "invented next question cut",
    ),
    # mmlu-1670: sand's specific heat capacity is (A) lower (B) higher (C) about the same (D) Can't say -> A
    (
        "mmlu-1670",
        "chat",
        "Sand cools faster, so less heat is stored per degree: its specific heat capacity is lower.",
        " (A) lower",
        "strict:A",
    ),
    (
        "mmlu-1670",
        "small",
        "Sand gets hot and cold fast.",
        " (D) Can't say",
        "strict:D",
        "'Can't say' is an option here, not an abstention",
    ),
    (
        "mmlu-1670",
        "small",
        "Sand gets hot and cold fast.",
        " I can't say.",
        "abstained",
        "a non-answer in the model's own words",
    ),
    # mmlu-2983: The symbol for antimony is (A) W (B) Sb (C) Fe (D) An -> B
    ("mmlu-2983", "small", "Antimony is Sb.", " Sb.", "strict:B"),
    (
        "mmlu-2983",
        "chat",
        "The symbol for antimony is Sb, from the Latin *stibium*. So the answer is (B).",
        None,
        "strict:B",
    ),
    # mmlu-2166: solution of 5x − 5 = −10 -> (A) −1
    ("mmlu-2166", "chat", "$5x - 5 = -10 \\Rightarrow 5x = -5 \\Rightarrow x = -1$.", " (A) −1", "strict:A"),
    (
        "mmlu-2166",
        "chat",
        "$5x - 5 = -10 \\Rightarrow 5x = -5 \\Rightarrow x = -1$, which is option A.",
        None,
        "lenient:A",
    ),
    # mmlu-87: T(-3,2) -> (A) -19
    ("mmlu-87", "chat", "By linearity, T(-3, 2) = -3·T(1, 0) + 2·T(0, 1) = -9 - 10 = -19.", " A", "strict:A"),
    ("mmlu-87", "small", "T(1, 0) = 3 and T(0, 1) = -5.", " -19", "strict:A", "option text given as a number"),
    # mmlu-2273: straws -> (D) 60
    ("mmlu-2273", "small", "9 * 5 = 45 straws. 45 + 15 = 60 straws.", " (D) 60", "strict:D"),
    ("mmlu-2273", "small", "9 * 5 = 45 straws.", " (C) 45", "strict:C", "wrong pick, read as written"),
    # mmlu-3225: binary search 120 integers -> (A) 7
    (
        "mmlu-3225",
        "chat",
        "Binary search examines at most ⌈log2(121)⌉ = 7 elements.\n\n**Answer: A**",
        None,
        "strict:A",
    ),
    # mmlu-4322: probability a*b positive -> (A) \frac{5}{12}
    (
        "mmlu-4322",
        "chat",
        "Both positive: $\\frac{1}{4}\\cdot\\frac{4}{6}$; both negative: $\\frac{3}{4}\\cdot"
        "\\frac{2}{6}$. Total $\\frac{4}{24} + \\frac{6}{24} = \\frac{5}{12}$.\n\nThe answer is (A).",
        None,
        "strict:A",
    ),
    ("mmlu-4322", "chat", "The probability is 5/12.", " \\frac{5}{12}, which is (A).", "strict:A"),
    # mmlu-3: Statement 1 | ... Statement 2 | ... (A) True, True (B) False, False (C) True, False (D) False, True -> B
    (
        "mmlu-3",
        "chat",
        "Statement 1 is false: a factor group of a non-Abelian group can be Abelian. Statement 2 is "
        "false: normality is not transitive.\n\nThe answer is (B) False, False.",
        None,
        "strict:B",
    ),
    (
        "mmlu-3",
        "small",
        "Statement 1 is False. Statement 2 is False.",
        " False, False",
        "strict:B",
        "option text in the trigger",
    ),
    ("mmlu-3", "small", "Statement 1 is True. Statement 2 is True.", " (A)", "strict:A"),
    # mmlu-5138: (B) inferential statistics
    (
        "mmlu-5138",
        "small",
        "To test significance you need inferential statistics.",
        " B) inferential statistics",
        "strict:B",
    ),
    (
        "mmlu-5138",
        "chat",
        "Descriptive statistics (A) only summarize data; standard deviation (D) is one of them. "
        "Significance tests are inferential.\n\nCorrect answer: **B**",
        " B.",
        "strict:B",
    ),
    (
        "mmlu-5138",
        "chat",
        "Descriptive statistics (A) only summarize data; standard deviation (D) is one of them. "
        "Significance tests are inferential.\n\nCorrect answer: **B**",
        None,
        "strict:B",
    ),
    # mmlu-2717: fertilization -> (B) fallopian tube
    ("mmlu-2717", "small", "Fertilization normally occurs in the fallopian tube.", " the fallopian tube.", "strict:B"),
    (
        "mmlu-2717",
        "small",
        "In humans, fertilization normally occurs in the",
        " uterus, I think. Wait, actually it is the fallopian tube (B).",
        "strict:B",
        "self-correction in the trigger",
    ),
    # mmlu-4937: -> (D) autism.
    (
        "mmlu-4937",
        "chat",
        "Speech delay, avoiding eye contact and insisting on routine are hallmark signs of autism "
        "spectrum disorder.\n\nAnswer: (D) autism",
        None,
        "strict:D",
    ),
    (
        "mmlu-4937",
        "chat",
        "I'm not able to diagnose anyone; please consult a pediatrician.",
        None,
        "abstained",
        "refusal",
    ),
    (
        "mmlu-4937",
        "chat",
        "I'm not able to diagnose anyone; please consult a pediatrician.",
        " I cannot provide a diagnosis.",
        "abstained",
        "refusal in the trigger",
    ),
    # mmlu-6380: (A) have liberal attitudes about extramarital sex ... (D) all of the above -> A
    (
        "mmlu-6380",
        "small",
        "People with liberal attitudes are liberal about everything.",
        " (D) all of the above",
        "strict:D",
        "'all of the above' is an option",
    ),
    (
        "mmlu-6380",
        "chat",
        "Research finds liberal premarital attitudes predict liberal extramarital attitudes, but not behavior.",
        " A.",
        "strict:A",
    ),
    # mmlu-13060: NOT true of both issues and crisis management -> (B)
    (
        "mmlu-13060",
        "chat",
        "(A) is true of both. (C) is true of both. (D) is true of both. Crisis management deals "
        "with acute risks but issues management does not, so (B) is the statement that is not true of both.",
        " B",
        "strict:B",
    ),
    (
        "mmlu-13060",
        "chat",
        "(A) is true of both. (C) is true of both. (D) is true of both. Crisis management deals "
        "with acute risks but issues management does not, so (B) is the statement that is not true of both.",
        None,
        "failed",
        "four letters in parentheses and no answer cue: a list, not an answer",
    ),
    # mmlu-2387: (A) dx3=9 (B) d+3=9 (C) 3+9=d (D) 3x9=d -> D
    ("mmlu-2387", "small", "Lee threw 3 times as far as Jean, so d = 3 x 9.", " (D) 3x9=d", "strict:D"),
    # mmlu-6687: (C) Appeal to the masses
    ("mmlu-6687", "small", "This is the bandwagon fallacy.", " C. Appeal to the masses", "strict:C"),
    (
        "mmlu-6687",
        "chat",
        "Believing a claim because many people believe it is the bandwagon fallacy, also called "
        "*argumentum ad populum*, i.e. an appeal to the masses.",
        None,
        "lenient:C",
    ),
    # mmlu-12545: (B) cerebral cortex
    ("mmlu-12545", "small", "The cerebral cortex develops last.", " (B)", "strict:B"),
    (
        "mmlu-12545",
        "small",
        "The brain stem is developed at birth.",
        " not the brain stem",
        "failed",
        "the trigger only rules one out and the first pass names no pick",
    ),
    # mmlu-7288: (A) autosomal dominant.
    (
        "mmlu-7288",
        "chat",
        "Malignant hyperthermia susceptibility (RYR1) is inherited in an autosomal dominant pattern.",
        " A) autosomal dominant.",
        "strict:A",
    ),
    ("mmlu-7288", "small", "It runs in families.", " Not sure.", "abstained"),
    # mmlu-214: (A) Closed, greenstick
    (
        "mmlu-214",
        "chat",
        "A bent but not displaced radius with intact skin is a closed greenstick fracture.",
        " (A)",
        "strict:A",
    ),
    (
        "mmlu-214",
        "small",
        "A bent bone with intact skin.",
        " (A) Closed, greenstick (B) Complex, comminuted (C) Compound, transverse (D) Open, spiral",
        "failed",
        "echoed options, and no pick in the first pass",
    ),
    # mmlu-0: degree of Q(sqrt(2), sqrt(3), sqrt(18)) -> (B) 4
    (
        "mmlu-0",
        "chat",
        "sqrt(18) = 3 sqrt(2) adds nothing, so the degree is [Q(sqrt 2, sqrt 3) : Q] = 4.",
        " (B) 4.",
        "strict:B",
    ),
    ("mmlu-0", "small", "The degree is 2 * 2 = 4.", " 4", "strict:B", "the option's text is a number"),
]

COMMONSENSEQA = [
    # revolving door ... security measure at a what? (A) bank (B) library (C) department store (D) mall (E) new york
    (
        "1afa02df02c908a558b4036e80242fac",
        "small",
        "A revolving door is convenient for two direction travel, but it also serves as a security measure at a bank.",
        " (A) bank.",
        "strict:A",
    ),
    (
        "1afa02df02c908a558b4036e80242fac",
        "small",
        "A revolving door is convenient for two direction travel, but it "
        "also serves as a security measure at a what? A revolving door is convenient",
        " bank",
        "strict:A",
        "the restated question is no pick; the trigger gives the text",
    ),
    (
        "1afa02df02c908a558b4036e80242fac",
        "small",
        "A revolving door is convenient for two direction travel, but it also serves as a security measure at a what?",
        "",
        "failed",
        "only the question restated",
    ),
    (
        "1afa02df02c908a558b4036e80242fac",
        "chat",
        "Banks use revolving doors to control who enters and leaves. "
        "Libraries and malls rarely need that level of security.\n\n**Answer: A**",
        None,
        "strict:A",
    ),
    (
        "1afa02df02c908a558b4036e80242fac",
        "chat",
        "Banks use revolving doors to control who enters and leaves.",
        None,
        "lenient:A",
        "the only option named",
    ),
    (
        "1afa02df02c908a558b4036e80242fac",
        "chat",
        "It is not the library (B) and not the mall (D); security matters most at a bank.",
        None,
        "lenient:A",
        "rejected options are not picks",
    ),
    (
        "1afa02df02c908a558b4036e80242fac",
        "small",
        "x",
        " Answer Choices: (A) bank (B) library (C) department store (D) mall (E) new york",
        "failed",
    ),
    (
        "1afa02df02c908a558b4036e80242fac",
        "chat",
        "A department store could use one, and so could a bank.",
        " A or C.",
        "abstained",
    ),
    (
        "1afa02df02c908a558b4036e80242fac",
        "chat",
        "Revolving doors keep out drafts and also slow down anyone trying to rush in or out, which matters at a bank.",
        " (A)\n\nTherefore, among A through E, the answer is (A).",
        "strict:A",
    ),
    # What do people aim to do at work? (A) complete job ...
    (
        "a7ab086045575bb497933726e4e6ad28",
        "small",
        "People go to work to complete their job.",
        " (A) complete job",
        "strict:A",
    ),
    ("a7ab086045575bb497933726e4e6ad28", "small", "People go to work.", " to complete job", "strict:A"),
    (
        "a7ab086045575bb497933726e4e6ad28",
        "chat",
        "At work, the main aim is to complete the job; people also talk to each other, but that isn't the goal.",
        " A",
        "strict:A",
    ),
    (
        "a7ab086045575bb497933726e4e6ad28",
        "chat",
        "At work, the main aim is to complete the job; people also talk to each other, but that isn't the goal.",
        None,
        "failed",
        "two options' texts appear and there is no letter: not decidable without a cue",
    ),
    # magazines along side many other printed works? (B) bookstore
    ("b8c0a4703079cf661d7261a60a1bcbff", "small", "A bookstore sells magazines and books.", " B", "strict:B"),
    (
        "b8c0a4703079cf661d7261a60a1bcbff",
        "small",
        "A bookstore sells magazines and books.",
        " B) bookstore",
        "strict:B",
    ),
    (
        "b8c0a4703079cf661d7261a60a1bcbff",
        "chat",
        "**Reasoning:** Magazines sit next to books and newspapers in a bookstore.\n\n**Answer:** (B) bookstore",
        None,
        "strict:B",
    ),
    (
        "b8c0a4703079cf661d7261a60a1bcbff",
        "small",
        "You can find magazines at a train station.",
        " (D) train station",
        "strict:D",
    ),
    # hamburger -> (A) fast food restaurant
    (
        "e68fb2448fd74e402aae9982aa76e527",
        "small",
        "Hamburgers are sold at fast food restaurants.",
        " (A) fast food restaurant",
        "strict:A",
    ),
    (
        "e68fb2448fd74e402aae9982aa76e527",
        "chat",
        "You'd most likely find a hamburger at a fast food restaurant.",
        None,
        "lenient:A",
    ),
    (
        "e68fb2448fd74e402aae9982aa76e527",
        "chat",
        "Hmm, a hamburger could be in your mouth or at a restaurant.",
        " Both A and D are possible.",
        "abstained",
        "two options at once",
    ),
    # farmland -> (A) midwest
    ("2435de612dd69f2012b9e40d6af4ce38", "small", "The midwest has a lot of farmland.", " midwest.", "strict:A"),
    (
        "2435de612dd69f2012b9e40d6af4ce38",
        "chat",
        "Farming areas is too vague and illinois is part of the midwest; the "
        "best general answer is the midwest.\n\n$\\boxed{A}$",
        None,
        "lenient:A",
    ),
    # ferret popular island country -> (C) great britain
    ("a4892551cb4beb279653ae52d0de4c89", "small", "Ferrets are popular pets in Great Britain.", " C", "strict:C"),
    ("a4892551cb4beb279653ae52d0de4c89", "small", "Ferrets are popular pets in Great Britain.", None, "lenient:C"),
    (
        "a4892551cb4beb279653ae52d0de4c89",
        "chat",
        "None of the listed options is an island country except Great Britain, so the answer must be (C).",
        " (C)",
        "strict:C",
    ),
    # coffee Spanish speaking North American country -> (B) mexico
    ("118a9093a30695622363455e4d911866", "small", "Mexico is a Spanish speaking country.", " B", "strict:B"),
    (
        "118a9093a30695622363455e4d911866",
        "chat",
        "The only country listed is Mexico.\n\nThe answer is **(B) mexico**.",
        None,
        "strict:B",
    ),
    # enemy approaching -> (D) listen to each other
    (
        "05ea49b82e8ec519e82d6633936ab8bf",
        "small",
        "Animals listen to each other.",
        " (D) listen to each other.",
        "strict:D",
    ),
    (
        "05ea49b82e8ec519e82d6633936ab8bf",
        "chat",
        "None of the options really describes fleeing or hiding, which is what animals actually do.",
        " none of the above.",
        "abstained",
        "'none of the above' is not an option here",
    ),
    # newspaper practice your what -> (A) literacy
    ("c0c07ce781653b2a2c01871ba2bcba93", "small", "Reading newspapers helps literacy.", " (A) literacy", "strict:A"),
    (
        "c0c07ce781653b2a2c01871ba2bcba93",
        "small",
        "Reading newspaper one of many ways to practice your what?",
        " (B) knowing how to read",
        "strict:B",
    ),
    # guitar -> (C) singing
    ("1d24f406b6828492040b405d3f35119c", "small", "People sing while playing guitar.", " C) singing", "strict:C"),
    (
        "1d24f406b6828492040b405d3f35119c",
        "chat",
        "People often sing along while they play, so singing fits best.\n\nAnswer: C",
        None,
        "strict:C",
    ),
]

ARC = [
    (
        "Mercury_7175875",
        "small",
        "If the planet rotates faster, a day is shorter.",
        " (C) Planetary days will become shorter.",
        "strict:C",
    ),
    ("Mercury_7175875", "small", "If the planet rotates faster, a day is shorter.", " C", "strict:C"),
    (
        "Mercury_7175875",
        "chat",
        "Rotation sets the length of a day; faster rotation means shorter days. Orbital "
        "period (years) does not depend on spin.\n\nThe correct answer is C.",
        None,
        "strict:C",
    ),
    (
        "Mercury_7175875",
        "chat",
        "Rotation sets the length of a day, so planetary days will become shorter.",
        None,
        "lenient:C",
    ),
    ("Mercury_7175875", "small", "x", "\n\nTherefore, among the choices, the answer is C.", "strict:C"),
    ("Mercury_SC_409171", "small", "Testing makes buildings safer.", " (B) buildings will be made safer", "strict:B"),
    (
        "Mercury_SC_409171",
        "chat",
        "The point of testing earthquake resistance is safety: buildings will be made safer.",
        None,
        "lenient:B",
    ),
    ("Mercury_SC_409171", "small", "x", " B.", "strict:B"),
    (
        "Mercury_SC_408547",
        "chat",
        "Photosynthesis starts when chlorophyll captures light energy; conversion to "
        "chemical energy comes after.\n\n**C**",
        " C",
        "strict:C",
    ),
    (
        "Mercury_SC_408547",
        "chat",
        "Photosynthesis starts when chlorophyll captures light energy; conversion to "
        "chemical energy comes after.\n\n**C**",
        None,
        "lenient:C",
        "a bold letter alone on its line",
    ),
    (
        "Mercury_SC_408547",
        "small",
        "Light energy is converted to chemical energy.",
        " (B) Light energy is converted to chemical energy.",
        "strict:B",
    ),
    (
        "Mercury_407327",
        "chat",
        "The speed is what the physicist changes: the independent (manipulated) variable.",
        " (D)",
        "strict:D",
    ),
    (
        "Mercury_407327",
        "chat",
        "The speed is what the physicist changes on purpose, so it is the independent (manipulated) variable.",
        None,
        "lenient:D",
    ),
    (
        "Mercury_407327",
        "small",
        "The physicist changes the speed.",
        " the dependent variable",
        "failed",
        "no option reads 'the dependent variable'; the first pass picks nothing",
    ),
    (
        "MCAS_2006_9_44",
        "chat",
        "Halfway down, each object has converted half its potential energy into kinetic "
        "energy, so each has gained half its maximum kinetic energy.\n\nAnswer: D",
        None,
        "strict:D",
    ),
    ("MCAS_2006_9_44", "small", "They fall the same.", " (C)", "strict:C"),
    (
        "Mercury_7270393",
        "small",
        "DFTD spreads through bites and affects cells.",
        " (B) an infectious, cell-cycle disease",
        "strict:B",
    ),
    (
        "Mercury_7270393",
        "chat",
        "It spreads between animals (infectious) and causes tumors (a cell-cycle disease).",
        " B.",
        "strict:B",
    ),
    (
        "MCAS_2014_5_7",
        "small",
        "It stores food for winter.",
        " (C) to store food that will be eaten over the winter months",
        "strict:C",
    ),
    ("MCAS_2014_5_7", "small", "It stores food for winter.", " C", "strict:C"),
    (
        "Mercury_7086660",
        "chat",
        "Palm trees grow in tropical climates, so the climate must once have been tropical.",
        " C",
        "strict:C",
    ),
    ("Mercury_7168805", "small", "Without hawks, mice and rats increase.", " B", "strict:B"),
    (
        "Mercury_7168805",
        "chat",
        "Hawks eat mice and rats. Removing them lets rodent populations grow.\n\n"
        "**Answer: (B) Populations of mice and rats would increase.**",
        None,
        "strict:B",
    ),
    ("MCAS_2003_8_11", "small", "The smallest unit is the atom.", " (A) the atom", "strict:A"),
    ("MCAS_2003_8_11", "small", "The smallest unit is the atom.", None, "lenient:A"),
    ("Mercury_7250058", "chat", "Prokaryotic cells are much smaller than eukaryotic cells.", " B", "strict:B"),
    ("Mercury_7012740", "small", "The Sun makes waves.", " (A) The Sun influences the formation of waves.", "strict:A"),
]

AQUA = [
    # aqua-0: (A) 5(√3 + 1) ... (E) None of these -> A
    (
        "aqua-0",
        "chat",
        "Let the tower height be h. With the angle rising from 45° to 60° in 10 minutes, the remaining "
        "time is 5(√3 + 1) minutes.",
        " (A)",
        "strict:A",
    ),
    (
        "aqua-0",
        "small",
        "The angle changes from 45 to 60.",
        " None of these",
        "strict:E",
        "'None of these' is option E here, not an abstention",
    ),
    ("aqua-0", "small", "The angle changes from 45 to 60.", " E) None of these", "strict:E"),
    # aqua-1: (E) $78.20
    (
        "aqua-1",
        "chat",
        "Let p be the price: 0.78p - 20 = p/2 + 1.90, so 0.28p = 21.90 and p = 78.21, i.e. $78.20.\n\n**Answer: E**",
        None,
        "strict:E",
    ),
    ("aqua-1", "small", "0.78p - 20 = 0.5p + 1.9", " $78.20", "strict:E"),
    # aqua-2: multiple of 9 and 12 -> (A) 36
    ("aqua-2", "small", "36 is divisible by 9 and 12.", " (A) 36", "strict:A"),
    ("aqua-2", "small", "36 is divisible by 9 and 12.", " 36", "strict:A"),
    ("aqua-2", "chat", "LCM(9, 12) = 36, and 36 is the only option divisible by both.", None, "lenient:A"),
    # aqua-3: (A) 0.22 (B) 0.26 ... -> B
    (
        "aqua-3",
        "chat",
        "P(neither) = 1 - P(A or B) and P(A or B) is at least 0.74, so P(neither) is at most 0.26.",
        " (B) 0.26",
        "strict:B",
        "'P(A or B)' names events, not options",
    ),
    (
        "aqua-3",
        "chat",
        "P(neither) = 1 - P(A or B) and P(A or B) is at least 0.74, so P(neither) is at most 0.26.",
        None,
        "lenient:B",
        "'P(A or B)' is no hedge; the option text 0.26 is the only one named",
    ),
    (
        "aqua-3",
        "small",
        "Stock A will increase with 0.56 and Stock B with 0.74.",
        " B",
        "strict:B",
        "'Stock B' in the first pass is a name",
    ),
    # aqua-4: Rs.360 at 20% profit -> (B) 300
    ("aqua-4", "small", "Cost price = 360 / 1.2 = 300.", " B", "strict:B"),
    (
        "aqua-4",
        "small",
        "Cost price = 360 / 1.2 = 300.",
        " 360 / 1.2 = 300",
        "strict:B",
        "the option's number after a calculation",
    ),
    (
        "aqua-4",
        "small",
        "A trader sold an article at a profit of 20% for Rs.360.",
        " (A) 270 (B) 300 (C) 280 (D) 320 (E) 315",
        "failed",
        "echoed options; nothing else",
    ),
    # aqua-5: -> (D) 400
    (
        "aqua-5",
        "chat",
        "1 of 20 is 5%, and the 20 black marbles are 5% of the bag: 20 / 0.05 = 400.",
        " (D) 400.",
        "strict:D",
    ),
    # aqua-6: -> (D) 65000
    ("aqua-6", "chat", "26 × 25 × 10 × 10 = 65000 with distinct letters.", " D", "strict:D"),
    # aqua-7: -> (C) 12.5
    ("aqua-7", "small", "Distance = 1000 miles.", " (C) 12.5", "strict:C"),
    (
        "aqua-7",
        "chat",
        "Distance 1000 miles; 250 at 100 mph = 2.5 h; 750 at 75 mph = 10 h; total 12.5 h.\n\nAnswer: (C)",
        None,
        "strict:C",
    ),
    # aqua-8: -> (E) 110
    ("aqua-8", "chat", "At most 200 − 90 = 110 students did neither.", " E", "strict:E"),
    ("aqua-8", "small", "45% of 200 is 90.", " (C) 90", "strict:C"),
    # aqua-9: -> (D) 40
    ("aqua-9", "small", "10% of 250 is 25. 1000 / 25 = 40.", " D) 40", "strict:D"),
    (
        "aqua-9",
        "small",
        "10% of 250 is 25. 1000 / 25 = 40.",
        None,
        "lenient:D",
        "options are numbers: the last number written is option D (25, also an option, is a step)",
    ),
    # aqua-10: -> (B) 230
    (
        "aqua-10",
        "chat",
        "Yearly units 5040, cost 554,400; need revenue ≥ 1,180,800, so price ≥ 234.3 - hmm, let me "
        "recompute: 626,400 / 5040 = 124.3, plus 110 = 234.3. The closest option above is 240.",
        " (C) 240",
        "strict:C",
    ),
    # aqua-11: -> (A) 4,000
    (
        "aqua-11",
        "chat",
        "Non-defective = 0.9N, and 2% of that is 72, so 0.018N = 72 and N = 4,000.",
        " (A) 4,000",
        "strict:A",
    ),
    ("aqua-11", "chat", "I cannot determine the number of staplers from this information.", None, "abstained"),
]

DATE = [
    # 0: Yesterday was April 30, 2021. today? (A) 06/12/2021 (B) 03/11/2021 (C) 02/23/2021 (D) 05/01/2021
    # (E) 04/29/2021 (F) 05/09/2021 -> D
    (
        "date_understanding-0",
        "small",
        "Yesterday was April 30, 2021, so today is May 1, 2021.",
        " (D) 05/01/2021",
        "strict:D",
    ),
    (
        "date_understanding-0",
        "small",
        "Yesterday was April 30, 2021, so today is May 1, 2021.",
        " 05/01/2021.",
        "strict:D",
        "the option's date",
    ),
    ("date_understanding-0", "chat", "If yesterday was 04/30/2021, today is **05/01/2021**.", None, "lenient:D"),
    (
        "date_understanding-0",
        "small",
        "Yesterday was April 30, 2021. What is the date today in MM/DD/YYYY?",
        " among A through F, the answer is D.",
        "strict:D",
    ),
    ("date_understanding-1", "small", "Today is May 1, so tomorrow is May 2, 2021.", " (D) 05/02/2021", "strict:D"),
    (
        "date_understanding-1",
        "small",
        "Today is May 1, so tomorrow is May 2, 2021.",
        " (B) 05/01/2021",
        "strict:B",
        "wrong pick, read as written",
    ),
    (
        "date_understanding-2",
        "chat",
        '"Yesterday" is given directly: April 30, 2021 → **F**.',
        None,
        "strict:F",
        "an arrow to a letter is an explicit pick",
    ),
    ("date_understanding-2", "small", "Yesterday was April 30, 2021.", " F", "strict:F"),
    ("date_understanding-3", "small", "Today is 05/01/2021. 10 days ago is 04/21/2021.", " A", "strict:A"),
    (
        "date_understanding-3",
        "chat",
        "Today is 05/01/2021; ten days earlier is 04/21/2021.\n\nAnswer: (A) 04/21/2021",
        None,
        "strict:A",
    ),
    ("date_understanding-4", "small", "A month ago from May 1 is April 1.", " (D) 04/01/2021", "strict:D"),
    ("date_understanding-5", "small", "One year ago from 05/01/2021 is 05/01/2020.", " (A)", "strict:A"),
    ("date_understanding-5", "small", "One year ago from 05/01/2021 is 05/01/2020.", None, "lenient:A"),
    ("date_understanding-6", "chat", "One week before 05/01/2021 is 04/24/2021.", " E", "strict:E"),
    ("date_understanding-7", "small", "One week from 05/01/2021 is 05/08/2021.", " (B) 05/08/2021", "strict:B"),
    (
        "date_understanding-7",
        "chat",
        "Today is 05/01/2021, so a week later is 05/08/2021. Not 05/09/2021, which would be eight days.",
        None,
        "lenient:B",
        "a rejected date is not a pick",
    ),
    ("date_understanding-8", "small", "24 hours after May 1 is May 2.", " C", "strict:C"),
    ("date_understanding-9", "small", "Jun 1 is 2 days away, so today is May 30.", " (B) 05/30/2021", "strict:B"),
    (
        "date_understanding-9",
        "chat",
        "The deadline is two days away, but the question doesn't say whether that counts "
        "today, so it is impossible to determine the date exactly.",
        None,
        "abstained",
    ),
    ("date_understanding-9", "small", "Jun 1 is 2 days away.", " I don't know.", "abstained"),
]

TRACKING = [
    # 0: Alice ends with ... (A) orange ball. (B) white ball. (C) blue ball. -> C
    (
        "tracking_shuffled_objects-0",
        "chat",
        "Start: A=orange, B=white, C=blue.\n1. Alice↔Bob: A=white, B=orange.\n"
        "2. Bob↔Claire: B=blue, C=orange.\n3. Alice↔Bob: A=blue, B=white.\n\nAlice has the **blue ball** → (C).",
        " (C) blue ball.",
        "strict:C",
    ),
    (
        "tracking_shuffled_objects-0",
        "chat",
        "Start: A=orange, B=white, C=blue.\n1. Alice↔Bob: A=white, B=orange.\n"
        "2. Bob↔Claire: B=blue, C=orange.\n3. Alice↔Bob: A=blue, B=white.\n\nAlice has the **blue ball** → (C).",
        None,
        "strict:C",
        "an arrow to a letter is an explicit pick; 'A=white' in the steps names players",
    ),
    (
        "tracking_shuffled_objects-0",
        "small",
        "Alice, Bob, and Claire are playing a game. At the start of the game, "
        "they are each holding a ball: Alice has a orange ball, Bob has a white ball, and Claire has a blue ball.",
        " (C)",
        "strict:C",
    ),
    (
        "tracking_shuffled_objects-0",
        "small",
        "Alice, Bob, and Claire are playing a game. At the start of the game, "
        "they are each holding a ball: Alice has a orange ball, Bob has a white ball, and Claire has a blue ball.",
        "",
        "failed",
        "the restated question names every ball; none is a pick",
    ),
    ("tracking_shuffled_objects-0", "small", "After the swaps Alice has the blue ball.", " blue ball.", "strict:C"),
    ("tracking_shuffled_objects-1", "small", "After the swaps Bob has the white ball.", " (B) white ball.", "strict:B"),
    ("tracking_shuffled_objects-1", "chat", "Tracking Bob: orange → blue → white. **Answer: B**", None, "strict:B"),
    (
        "tracking_shuffled_objects-1",
        "small",
        "Bob has the",
        " (A) orange ball. (B) white ball. (C) blue ball.",
        "failed",
        "the trigger echoes the options; the first pass is cut off",
    ),
    ("tracking_shuffled_objects-2", "small", "Claire has the orange ball.", " A", "strict:A"),
    (
        "tracking_shuffled_objects-2",
        "chat",
        "Claire: blue → orange (after swap 2) and is not involved in swap 3.\n\nFinal answer: (A) orange ball.",
        None,
        "strict:A",
    ),
    ("tracking_shuffled_objects-3", "small", "Alice has the blue ball at the end.", " (C) blue ball.", "strict:C"),
    (
        "tracking_shuffled_objects-3",
        "chat",
        "Bob↔Claire: B=blue, C=brown. Alice↔Bob: A=blue, B=black. "
        "Claire↔Bob: C=black, B=brown. Alice ends with the blue ball, so the answer is C.",
        None,
        "strict:C",
    ),
    ("tracking_shuffled_objects-3", "small", "Alice has the black ball at the end.", " (A) black ball.", "strict:A"),
    ("tracking_shuffled_objects-4", "small", "Bob has the brown ball.", " B", "strict:B"),
    (
        "tracking_shuffled_objects-4",
        "chat",
        "I lost track of the swaps; it is unclear which ball Bob ends with.",
        " unclear.",
        "abstained",
    ),
    (
        "tracking_shuffled_objects-4",
        "chat",
        "After three swaps Bob is back to his own ball.",
        " (B) brown ball. Wait, no: after swap 2 he has the black ball, and swap 3 gives him brown. Yes, (B).",
        "strict:B",
    ),
    (
        "tracking_shuffled_objects-4",
        "small",
        "Bob has the brown ball.",
        " brown",
        "lenient:B",
        "a colour alone is not an option's text; the first pass names one",
    ),
    (
        "tracking_shuffled_objects-2",
        "small",
        "Claire has the orange ball.",
        " not the blue ball, but the orange ball.",
        "strict:A",
    ),
    (
        "tracking_shuffled_objects-1",
        "chat",
        "Let me think step by step.\n\nBob: white → orange → blue → white.\n\nSo Bob ends with the white ball.",
        None,
        "lenient:B",
    ),
    (
        "tracking_shuffled_objects-0",
        "chat",
        "Alice ends with the blue ball. The correct option is (C).",
        " C.",
        "strict:C",
    ),
]

CASES = [
    *cases("mmlu", MMLU),
    *cases("commonsenseqa", COMMONSENSEQA),
    *cases("arc_challenge", ARC),
    *cases("aqua", AQUA),
    *cases("date_understanding", DATE),
    *cases("tracking_shuffled_objects", TRACKING),
]
