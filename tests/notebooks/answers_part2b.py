"""Answer keys of labs 07, 10 and 11 (part 2 of the series), read by test_notebooks.py: lab -> {exercise: (right
answer, wrong answer)}, worked out by hand, as a learner would type them."""

ANSWERS: dict[str, dict[str, tuple[str, str]]] = {
    "11_full_scale": {"ex1": ("468", "469"),                  # 60000 // 128 full batches (the partial one dropped)
                      "ex2": ("64", "256"),                   # the global batch 256 split over 4 processes
                      "ex3": ("one step gives each neuron one chance to fire: rates are 0 or 1 and the readout is "
                              "coarse", "tdBN's statistics were computed for T = 4")},
}
