"""Gold cases, number answers: gsm8k, svamp, multiarith, addsub, singleeq.

C(item id, style, first-pass output, trigger continuation or None, expected, note). `expected` is
"strict:V" (the trigger pass, or without one the first answer cue, gives V), "lenient:V" (only a
fallback on the first-pass text finds V), "abstained" or "failed". Styles: "small" (a small local
model: rambling, repetition, truncation, invented follow-up questions), "chat" (a large chat
model: chain of thought, markdown, LaTeX, refusals, self-corrections).
"""

from __future__ import annotations

from collections import namedtuple

from case import Case

C = namedtuple("C", "item style output trigger expected note", defaults=("",))

JANET = ("Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and uses 4 for muffins, so she has "
         "16 - 3 - 4 = 9 eggs left. She sells each egg for $2, so she makes 9 * 2 = $18 every day.")
JAMES = "James runs 3 sprints 3 times a week, so 3 * 3 = 9 sprints. Each sprint is 60 meters."

CASES = [
    # --- gsm8k ---------------------------------------------------------------------------------
    C("gsm8k-0", "small", JANET, " $18.", "strict:18"),
    C("gsm8k-0", "small", JANET, " 18 dollars.\n\nQuestion: A robe takes 2 bolts of blue fiber and half that much "
      "white fiber. How many bolts in total does it take?\nAnswer: 3", "strict:18", "invented next question cut"),
    C("gsm8k-0", "chat", "**Step 1.** Eggs left: $16 - 3 - 4 = 9$.\n\n**Step 2.** Income: $9 \\times \\$2 = \\$18$.\n\n"
      "**Final Answer:** $\\boxed{18}$", "\n\nTherefore, the answer (arabic numerals) is **18**.", "strict:18",
      "echoed trigger and bold"),
    C("gsm8k-0", "small", "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
      "muffins for her friends every day with four. She sells the remainder", " 16.", "strict:16",
      "truncated restatement; the trigger says 16"),
    C("gsm8k-0", "small", JANET, "\n\nTherefore, the answer (arabic numerals) is 18.", "strict:18"),
    C("gsm8k-0", "small", "She has 16 eggs. She eats 3 and bakes 4.", ":\n\n16 - 3 - 4 = 9\n9 * 2 = 18",
      "strict:18", "a derivation over two lines is worth its end"),
    C("gsm8k-0", "chat", JANET + " Wait, does she eat the muffins' eggs too? No, that's already counted. "
      "The answer is $18.", " 18", "strict:18"),
    C("gsm8k-0", "chat", "She sells 16 - 3 - 4 = 9 eggs at $2 each: 9 * 2 = 18.\n#### 18", None, "strict:18",
      "GSM8K '####' answer line, no trigger pass"),
    C("gsm8k-0", "chat", "Janet keeps 16 - 3 - 4 = 9 eggs for sale.", " not possible to determine without "
      "knowing the price of each egg.", "abstained"),
    C("gsm8k-0", "small", "She sells 9 eggs.", " eighteen dollars.", "strict:18", "number word"),
    C("gsm8k-0", "chat", "Janet sells 16 - 3 - 4 = 9 eggs every day, but the price is not clear to me.",
      " The answer cannot be determined from the information given.", "abstained",
      "issue example: a second pass that cannot determine is not rescued by 9"),
    C("gsm8k-0", "chat", "16 - 3 - 4 = 9 eggs remain. The question gives the price as $2, but it never says "
      "whether she sells all of them, so the answer cannot be determined.", ":", "abstained",
      "first pass abstains; 9 and 2 are reasoning"),
    C("gsm8k-0", "chat", "At first I thought the answer cannot be determined. Wait, actually the price is $2 per egg, "
      "so 9 * 2 = 18. The answer is 18.", None, "strict:18", "self-correction after an abstention"),
    C("gsm8k-0", "chat", "The answer is not 16; it is 18, because she keeps 7 eggs for herself.", None, "strict:18",
      "a cue that rejects one number and states another"),
    C("gsm8k-0", "small", JANET, " 18.\n\nTherefore, the answer (arabic numerals) is 18.\n\nTherefore, the answer "
      "(arabic numerals) is 18.\n\nTherefore, the answer (arabic", "strict:18", "repetition loop"),
    C("gsm8k-0", "chat", "I'm sorry, but I can't help with calculating income from selling eggs.", None, "abstained",
      "refusal"),
    C("gsm8k-0", "chat", JANET, " I'm sorry, but I can't help with that.", "abstained", "refusal in the trigger"),
    C("gsm8k-0", "small", JANET, " not 16, but 18.", "strict:18", "a rejected number is not the answer"),
    C("gsm8k-1", "small", "A robe takes 2 bolts of blue fiber. White fiber is half of that, so 1 bolt.", " 3 bolts.",
      "strict:3"),
    C("gsm8k-1", "small", "It takes 2 bolts of blue fiber and half that much white, which is 2 / 2 = 1 bolt. "
      "So in total 2 + 1 = 3 bolts.", None, "lenient:3"),
    C("gsm8k-1", "small", "Blue: 2 bolts. White: 1 bolt.", ": 2 + 1 = 3", "strict:3", "expression after the cue"),
    C("gsm8k-1", "small", "A robe takes 2 bolts of blue fiber and half that much white fiber.", " 2.5 bolts",
      "strict:2.5"),
    C("gsm8k-1", "chat", "- Blue fiber: **2** bolts\n- White fiber: 2 ÷ 2 = **1** bolt\n\n**Total:** 3 bolts",
      "\n\n**3**", "strict:3"),
    C("gsm8k-2", "chat", "Total cost: $80,000 + $50,000 = $130,000. New value: $80,000 × 2.5 = $200,000. Profit: "
      "$200,000 − $130,000 = $70,000.\n\nThe answer is $70,000.", " $70,000.", "strict:70000"),
    C("gsm8k-2", "chat", "Profit is the new value minus what he spent.", " 70,000 dollars", "strict:70000"),
    C("gsm8k-2", "chat", "The house is worth 80,000 * 2.5 = 200,000 after repairs.", " $200,000 - $130,000 = $70,000",
      "strict:70000"),
    C("gsm8k-2", "small", "He buys a house for $80,000 and puts in $50,000 in repairs. So the house is worth $80,000 + "
      "$50,000 = $130,000. The value increased by 150% so 130,000 * 1.5 = 195,000. Profit = 195,000 - 130,000 = "
      "65,000", " $65,000.", "strict:65000", "wrong answer, read as written"),
    C("gsm8k-2", "chat", "It depends on whether the 150% applies to the purchase price or to the total.",
      " either $70,000 or $120,000.", "abstained", "a hedge between two numbers"),
    C("gsm8k-2", "chat", "Profit = 200,000 - 130,000 = 70,000", None, "lenient:70000",
      "'Profit =' is no answer cue; the last number is read leniently"),
    C("gsm8k-3", "chat", JAMES + " Total = 9 * 60 = 540 meters.", None, "strict:540",
      "issue example: an expression after the cue is worth its result"),
    C("gsm8k-3", "chat", JAMES + " Total = 9 * 60 = 540 meters.", " 540.", "strict:540"),
    C("gsm8k-3", "small", JAMES, " Total = 9 * 60 = 540 meters.", "strict:540", "issue example in the trigger"),
    C("gsm8k-3", "small", JAMES, " 9 * 60 = 540 meters.", "strict:540"),
    C("gsm8k-3", "small", "He runs 3 sprints 3 times a week.", " 3 * 3 * 60 = 540", "strict:540"),
    C("gsm8k-3", "small", "He runs 3 sprints 3 times a week. He runs 60 meters each sprint. He runs 3 sprints 3 "
      "times a week. He runs 60 meters each sprint. He runs 3 sprints", " 180 meters.", "strict:180",
      "repetition, wrong"),
    C("gsm8k-3", "chat", "$3 \\times 3 = 9$ sprints per week, and $9 \\times 60 = 540$.\n\nThe answer is "
      "$\\boxed{540}$ meters.", None, "strict:540"),
    C("gsm8k-3", "chat", "### Solution\n1. Sprints per week: 3 × 3 = 9\n2. Meters: 9 × 60 = **540**\n\n"
      "**Answer: 540 meters**", None, "strict:540"),
    C("gsm8k-3", "small", JAMES, " 9 * 60", "strict:540", "an unevaluated product is worth its value"),
    C("gsm8k-3", "chat", "The total distance is $9 \\cdot 60 = 540$ m.", " $\\boxed{540}$", "strict:540"),
    C("gsm8k-3", "small", JAMES + " So he runs 9 sprints", " (3 x 3) x 60 = 540 meters", "strict:540"),
    C("gsm8k-4", "chat", "Daily total: 20 chickens × 3 cups = 60 cups. Already given: 15 + 25 = 40. "
      "Final meal: 60 − 40 = **20 cups**.", "\n\n**20**", "strict:20"),
    C("gsm8k-4", "small", "Wendi gives 15 cups in the morning and 25 cups in the afternoon.",
      " 20 cups of feed in the final meal.", "strict:20"),
    C("gsm8k-4", "small", "Wendi gives 15 cups in the morning and 25 cups in the afternoon. So 15 + 25 = 40 cups.",
      " 40 cups.", "strict:40"),
    C("gsm8k-4", "chat", "Each chicken needs 3 cups a day: 3 * 20 = 60. She has given 15 + 25 = 40. "
      "She needs 60 - 40 = 20 more cups.", "", "lenient:20", "empty trigger continuation"),
    C("gsm8k-5", "small", "One glass costs $5 and every second glass costs 60% of $5 = $3.", " $64.", "strict:64"),
    C("gsm8k-5", "chat", "Kylar buys 16 glasses. 8 of them cost $5 and 8 cost 60% of $5 = $3. So 8 * 5 + 8 * 3 = "
      "40 + 24 = 64. Wait, let me recheck: 60% of 5 is 3, yes. The answer is 64.", None, "strict:64"),
    C("gsm8k-5", "chat", "16 glasses at $5 each: 16 * $5 = $80. Wait, every second glass is cheaper. "
      "8 * $5 + 8 * $3 = $64.", None, "lenient:64", "self-correction; the number after it counts"),
    C("gsm8k-5", "small", "He buys 16 glasses.", " 60% of $5 = $3, so 8 * $5 + 8 * $3 = $64.", "strict:64",
      "a derivation in the trigger is worth its last step"),
    C("gsm8k-6", "small", "Seattle has 20 sheep.", " 260 sheep.", "strict:260"),
    C("gsm8k-6", "small", "Charleston has 80 and Toulouse has 160.", " 20 + 80 + 160 = 260.", "strict:260"),
    C("gsm8k-6", "small", "Seattle has 20 sheep. Charleston has 4 * 20 = 80 sheep. Toulouse has 2 * 80 = 160 sheep. "
      "Together they have 20 + 80 + 160 = 260 sheep.", " 260", "strict:260"),
    C("gsm8k-6", "small", "Seattle has 20 sheep. Charleston has 4 * 20 = 80 sheep. Toulouse has 2 * 80 = 160 sheep. "
      "Together they have 20 + 80 + 160 = 260 sheep.", None, "lenient:260"),
    C("gsm8k-7", "chat", "The question says \"How load\" - I assume it means how long. 40% of 200 GB is 80 GB, "
      "which takes 40 minutes; then a 20-minute restart; then 100 minutes for the full file.",
      " 160 minutes.", "strict:160"),
    C("gsm8k-7", "chat", "40 + 20 + 100 = 160 minutes in total.", " 40 + 20 + 100 = 160 minutes", "strict:160"),
    C("gsm8k-8", "small", "He drives 3 * 60 = 180 miles away.", " 45 miles.", "strict:45"),
    C("gsm8k-8", "chat", "Away: 180 miles. Back: 0 + 15 + 120 = 135 miles.", " 180 - 135 = 45 miles from home.",
      "strict:45"),
    C("gsm8k-9", "small", "Eliza earns $10 an hour.", " $460.", "strict:460"),
    C("gsm8k-9", "chat", "Regular pay: 40 × $10 = $400. Overtime rate: 1.2 × $10 = $12. Overtime pay: 5 × $12 = $60. "
      "Total = $400 + $60 = $460.", None, "strict:460"),
    C("gsm8k-10", "small", "First month 60, second month 180.", " 366 downloads", "strict:366"),
    C("gsm8k-10", "small", "60 * 3 = 180. 180 * 0.7 = 126.", " 60 + 180 + 126 = 366", "strict:366"),
    C("gsm8k-11", "chat", "Donuts: 3 × 68 = 204. Cupcakes: 2 × 80 = 160. Cheesecakes: 6 × 55 = 330. "
      "The total cost is $\\$694$.", None, "lenient:694", "'total cost is' is no cue; the last number"),
    C("gsm8k-11", "chat", "204 + 160 + 330 = 694", " $694", "strict:694"),
    C("gsm8k-12", "small", "He earns 7 * 1.5 = 10.5 a year and spends 3.", " 13 years.", "strict:13"),
    C("gsm8k-12", "small", "He earns 7 lemons a year.", " 12", "strict:12"),
    C("gsm8k-13", "chat", "Let $x$ be the number she started with. After the green house she has $\\frac{2x}{3}$, "
      "then $\\frac{2x}{3} - 2$, and half of that is left: $\\frac{1}{2}(\\frac{2x}{3} - 2) = 5$, so $x = 18$.",
      " 18", "strict:18"),
    C("gsm8k-13", "small", "She sold a third of her vacuum cleaners.", " cannot be determined.", "abstained"),
    C("gsm8k-14", "small", "20% of 20 is 4. 16 left. 25% of 16 is 4. 12 left.", " 60%.", "strict:60"),
    C("gsm8k-14", "small", "12 out of 20 students enrolled in hip-hop.", " 60 percent", "strict:60"),
    C("gsm8k-15", "small", "2.5% of 5000 is 125.", " $125.", "strict:125"),
    C("gsm8k-15", "chat", "Jewelry: 2.5% of $5,000 = $125. Gadgets: 1.2% of $8,000 = $96. The jewelry gives more "
      "profit: $125.", None, "lenient:125"),
    C("gsm8k-16", "small", "80 + 150 = 230", " 230 miles.", "strict:230"),
    C("gsm8k-17", "chat", "Teaching: 20 × 35 × 50 = $35,000. Coaching: 30 × 15 × 50 = $22,500.", " $57,500.",
      "strict:57500"),
    C("gsm8k-17", "small", "She works 50 weeks.", " 57500", "strict:57500"),
    C("gsm8k-18", "small", "She eats 3 eggs a day for 28 days.", " 7 dozen.", "strict:7"),
    C("gsm8k-19", "chat", "She must finish 12 miles in 3 hours; 6 miles remain for 1 hour.", " 6 mph.", "strict:6"),
    C("gsm8k-20", "chat", "Orange drink water: 9 liters x 2/3 = 6. Pineapple water: 15 x 3/5 = 9.", " 15 liters.",
      "strict:15"),
    C("gsm8k-21", "small", "Raymond is 31 + 6 = 37.", " 14 years ago.", "strict:14"),
    C("gsm8k-22", "small", "3 customers buy 1 DVD, 2 customers buy 2 DVDs.", " 3 + 4 = 7 DVDs.", "strict:7"),
    C("gsm8k-22", "chat", "**Answer:** Billy sold **7** DVDs.", None, "lenient:7",
      "'Answer:' is followed by words, not the number; the last number is read leniently"),
    C("gsm8k-23", "small", "From 1:00 PM to 5:00 PM is 4 hours.", " 8 centimeters.", "strict:8"),
    C("gsm8k-23", "small", "From 1:00 PM to 5:00 PM is 4 hours. 4 * 2 = 8 centimeters.", None, "lenient:8"),
    C("gsm8k-24", "chat", "If $19.50 is 75% of the original price, then the original price is "
      "$\\frac{19.50}{0.75} = 26$ dollars.", " $26.", "strict:26"),
    C("gsm8k-24", "chat", "Original price = \\frac{19.50}{0.75}", " \\boxed{\\frac{19.50}{0.75}}", "strict:26",
      "a fraction in a box is worth its value"),
    C("gsm8k-25", "chat", "Meal $12, milk 5 × $3 = $15, apples 4 × $1.50 = $6. Pizza money: 50 − 33 = $17, "
      "so 17 ÷ 8.50 = 2 boxes.", " 2 boxes of pizza.", "strict:2"),
    C("gsm8k-26", "small", "3 * 16.5 + 3 * 22.5 + 3 * 42", " $243.", "strict:243"),
    C("gsm8k-27", "small", "60 days / 15 servings = 4 cartons. 4 * $4.00 = $16.00", " $16.00", "strict:16"),
    C("gsm8k-27", "small", "60 days / 15 servings = 4 cartons. 4 * $4.00 = $16.00", None, "lenient:16"),
    C("gsm8k-28", "small", "The second stop is at 60 - 15 = 45 miles.", " 45 - 20 = 25 miles.", "strict:25"),
    C("gsm8k-29", "chat", "Heels: $33 + $66 = $99. The boots cost $99 + $5 = $104.", " \\$104.", "strict:104"),
    C("gsm8k-29", "chat", "I need more information about the boots' price to answer this.", None, "abstained",
      "first pass only, no trigger pass"),
    C("gsm8k-29", "small", "The heels cost 33 and 66.", " I don't know.", "abstained"),
    # --- svamp ----------------------------------------------------------------------------------
    C("svamp-chal-1", "small", "Each pack costs 76 dollars and the discount is 25 dollars.", " 51.", "strict:51"),
    C("svamp-chal-1", "small", "Each pack costs 76 dollars.", " 76 - 25 = 51 dollars.", "strict:51"),
    C("svamp-chal-1", "chat", "Price after discount: 76 − 25 = **51** dollars per pack.", None, "lenient:51"),
    C("svamp-chal-1", "small", "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack",
      " 101 dollars.", "strict:101", "wrong answer, read as written"),
    C("svamp-chal-2", "small", "Dan had $4 and has $3 left.", " $1.", "strict:1"),
    C("svamp-chal-2", "chat", "The candy bar cost $4 - $3 = $1.", "\n\nTherefore, the answer (arabic numerals) is $1.",
      "strict:1"),
    C("svamp-chal-3", "small", "Paco had 26 salty cookies and ate 9.", " 17 salty cookies", "strict:17"),
    C("svamp-chal-3", "small", "Paco had 26 salty cookies and 17 sweet cookies.", " 26 - 9 = 17", "strict:17"),
    C("svamp-chal-3", "small", "Paco had 26 salty cookies and 17 sweet cookies. He ate 14 sweet cookies and 9 salty "
      "cookies.", " 3 sweet cookies are left.", "strict:3", "answers the wrong quantity; read as written"),
    C("svamp-chal-4", "small", "43 children minus 21 children.", " 22.", "strict:22"),
    C("svamp-chal-4", "chat", "43 − 21 = 22 children got off.", ":\n\n22", "strict:22"),
    C("svamp-chal-5", "chat", "82 got on, and 28 + 82 − 30 = 80 got off. 82 − 80 = 2.", " 2 more children.",
      "strict:2"),
    C("svamp-chal-5", "small", "28 children were riding on the bus.", " 2 or 3.", "abstained"),
    C("svamp-chal-6", "small", "Olivia had 3 + 49 = 52 dollars and spent 3.", " $46.", "strict:46"),
    C("svamp-chal-6", "small", "She collected 49 and spent 3.", " 49 - 3 = 46 dollars", "strict:46"),
    C("svamp-chal-7", "small", "Jerry had some action figures.", " 3 action figures.", "strict:3"),
    C("svamp-chal-7", "small", "10 - 7 = 3", "", "lenient:3"),
    C("svamp-chal-8", "small", "He ate 18 and gave 9.", " 18 - 9 = 9 more cookies.", "strict:9"),
    C("svamp-chal-9", "small", "She needs 10 cups of flour and put in 6.", " 4 cups.", "strict:4"),
    C("svamp-chal-9", "chat", "The recipe needs 10 cups of flour; she has added 6. The sugar and salt don't matter.",
      " **4**", "strict:4"),
    C("svamp-chal-10", "small", "9 customers left and 12 remained.", " 21 customers.", "strict:21"),
    C("svamp-chal-11", "small", "6 storks and 3 + 2 = 5 birds.", " 1.", "strict:1"),
    C("svamp-chal-12", "chat", "11 sets × 13 chairs = 143 chairs.", " 143", "strict:143"),
    C("svamp-chal-12", "chat", "11 sets × 13 chairs = 143 chairs.", None, "lenient:143"),
    C("svamp-chal-13", "small", "Boys: 692 - 458 = 234.", " 692 + 234 = 926 pupils.", "strict:926"),
    C("svamp-chal-14", "small", "Dean is 13 + 4 = 17 feet.", " 15 * 17 = 255 feet.", "strict:255"),
    # --- multiarith -----------------------------------------------------------------------------
    C("multiarith-0", "small", "Debby had 32 and her sister had 42, so 32 + 42 = 74.", " 39.", "strict:39"),
    C("multiarith-0", "small", "They had 74 pieces.", " 74 - 35 = 39 pieces.", "strict:39"),
    C("multiarith-0", "chat", "Together: 32 + 42 = 74. After the first night: 74 − 35 = 39.\n\n**Answer: 39**", None,
      "strict:39"),
    C("multiarith-1", "small", "13 + 5 = 18 cats.", " 8 cats.", "strict:8"),
    C("multiarith-1", "small", "13 + 5 = 18 cats. 18 - 10 = 8.", " 18 - 10 = 8", "strict:8"),
    C("multiarith-2", "small", "He bought 2 + 2 = 4 games.", " 2 good games.", "strict:2"),
    C("multiarith-2", "small", "He bought 2 + 2 = 4 games.", " 4", "strict:4", "wrong answer, read as written"),
    C("multiarith-3", "small", "42 + 7 = 49 apples.", " 40 extra apples.", "strict:40"),
    C("multiarith-3", "chat", "Total apples: 42 + 7 = 49. Extra: 49 − 9 = 40.", " $\\boxed{40}$.", "strict:40"),
    C("multiarith-4", "small", "36 + 37 = 73 flowers.", " 3 extra flowers.", "strict:3"),
    C("multiarith-5", "small", "29 + 16 = 45 carrots.", " 7 bad carrots.", "strict:7"),
    C("multiarith-5", "small", "29 + 16 = 45 carrots. 45 - 38 = 7 bad carrots.", None, "lenient:7"),
    C("multiarith-6", "small", "16 + 28 = 44 dollars.", " 19 dollars.", "strict:19"),
    C("multiarith-6", "small", "16 + 28 = 44 dollars.", " 44 - 25 = 19 dollars", "strict:19"),
    C("multiarith-7", "small", "15 + 18 = 33 pictures.", " 2 pictures.", "strict:2"),
    C("multiarith-8", "small", "23 + 32 = 55 pictures.", " 11.", "strict:11"),
    C("multiarith-9", "small", "9 + 21 = 30 shirts.", " 1 shirt.", "strict:1"),
    C("multiarith-10", "small", "39 + 47 = 86 shirts.", " 66 shirts.", "strict:66"),
    C("multiarith-10", "small", "39 + 47 = 86 shirts.", " 86 - 20 = 66.", "strict:66"),
    C("multiarith-11", "small", "4 + 29 = 33 pastries.", " 9 pastries.", "strict:9"),
    C("multiarith-12", "small", "24 + 12 = 36 pictures.", " 22 pictures.", "strict:22"),
    C("multiarith-13", "small", "3 + 9 = 12 flowers.", " 2 extra flowers.", "strict:2"),
    # --- addsub ---------------------------------------------------------------------------------
    C("addsub-1", "small", "Joan found 70 seashells and has 27 left.", " 43 seashells.", "strict:43"),
    C("addsub-1", "small", "Joan found 70 seashells on the beach . she gave Sam some of her seashells .",
      " 70 - 27 = 43", "strict:43"),
    C("addsub-1", "chat", "She gave away 70 − 27 = 43 seashells.", None, "lenient:43"),
    C("addsub-2", "small", "There were 28 bales and now 54.", " 26 bales.", "strict:26"),
    C("addsub-2", "small", "There were 28 bales and now 54.", " 54 - 28 = 26 bales", "strict:26"),
    C("addsub-3", "small", "8 cups minus 2 cups.", " 6 cups.", "strict:6"),
    C("addsub-4", "small", "12 games, 4 lost.", " 8 games.", "strict:8"),
    C("addsub-4", "small", "12 games, 4 lost.", " 12 - 4 = 8", "strict:8"),
    C("addsub-5", "small", "22 trees now, 55 later.", " 33 walnut trees.", "strict:33"),
    C("addsub-6", "small", "Mike had 34 peaches and now has 86.", " 52 peaches.", "strict:52"),
    C("addsub-7", "small", "6 roses and now 16.", " 10 roses.", "strict:10"),
    C("addsub-8", "small", "4 + 9 = 13 games.", " 13 football games.", "strict:13"),
    C("addsub-10", "small", "4 + 6 = 10 trees.", " 10.", "strict:10"),
    C("addsub-11", "small", "9 + 7 = 16 dimes.", " 16 dimes.", "strict:16"),
    C("addsub-12", "small", "7 + 5 = 12 puppies.", " 12 puppies.", "strict:12"),
    C("addsub-13", "small", "9 + 6 = 15 pizzas.", " 15 pizzas.", "strict:15"),
    C("addsub-14", "small", "2 + 3 = 5 pencils.", " 5 pencils.", "strict:5"),
    C("addsub-14", "small", "There are 2 pencils in the drawer . Tim placed 3 pencils in the drawer .", " 2 + 3 = 5.",
      "strict:5"),
    # --- singleeq -------------------------------------------------------------------------------
    C("singleeq-0", "small", "70 - 27 = 43 seashells.", " 43 seashells.", "strict:43"),
    C("singleeq-1", "small", "54 - 28 = 26 bales.", " 26.", "strict:26"),
    C("singleeq-2", "small", "Each person paid 45 dollars.", " 3 * 45 = 135 dollars.", "strict:135"),
    C("singleeq-2", "chat", "Three people paid $45 each: 3 × 45 = 135.\n\nThe total bill was **$135**.", None,
      "lenient:135"),
    C("singleeq-3", "small", "8 - 2 = 6 cups.", " 6 more cups.", "strict:6"),
    C("singleeq-4", "small", "12 - 4 = 8 games.", " 8 games.", "strict:8"),
    C("singleeq-5", "small", "55 - 22 = 33.", " 33.", "strict:33"),
    C("singleeq-6", "small", "86 - 34 = 52 peaches.", " 52 peaches.", "strict:52"),
    C("singleeq-7", "small", "16 - 6 = 10 roses.", " 10 roses.", "strict:10"),
    C("singleeq-8", "chat", "Let $c$ be the price of a candy bar: $2 + 5c = 27$, so $5c = 25$ and $c = 5$.",
      " $5$ dollars.", "strict:5"),
    C("singleeq-8", "chat", "Let $c$ be the price of a candy bar: $2 + 5c = 27$, so $5c = 25$ and $c = 5$.", None,
      "lenient:5"),
    C("singleeq-9", "chat", "Let x be the starting number: (x + 4) / 2 = 34, so x + 4 = 68 and x = 64.", " 64 cards.",
      "strict:64"),
    C("singleeq-10", "chat", "Half the allowance plus 8 is 12, so half is 4 and the allowance is 8.", " $8.",
      "strict:8"),
    C("singleeq-11", "chat", "x + (x + 2) + (x + 4) = 162, so 3x + 6 = 162 and x = 52.", " 52.", "strict:52"),
    C("singleeq-12", "small", "79 - 16 = 63 dollars for 9 books.", " 63 / 9 = 7 dollars.", "strict:7"),
    C("singleeq-13", "small", "80 - 17 = 63.", " 63 / 7 = 9 hours.", "strict:9"),
    C("singleeq-13", "chat", "The rental fee leaves $80 − $17 = $63, and $63 ÷ $7 per hour = 9 hours.", None,
      "lenient:9"),
]

CASES = [Case(c.item.split("-")[0], *c) for c in CASES]
