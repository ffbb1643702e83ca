"""Answer keys of labs 07, 10 and 11 (part 2 of the series), read by test_notebooks.py: lab -> {exercise: (right
answer, wrong answer)}, worked out by hand, as a learner would type them."""

ANSWERS: dict[str, dict[str, tuple[str, str]]] = {
    "07_loss_landscapes": {"ex1": ("0.5", "2"),               # ‖θ_i‖ / ‖d_i‖ = 3 / 6
                           "ex2": ("twice as wide: flatter-looking, though the function is the same", "the same"),
                           "ex3": ("1.5", "3")},              # ½ · 12 · 0.5²
    "10_full_spike": {"ex1": ("[0, 1, 1, 0]", "[0, 1, 1, 1]"),  # XOR of (a, s) = 00, 01, 10, 11
                      "ex2": ("information flows only from the spikes into the accumulator, never back",
                              "the pathway's weights are zero after training"),
                      "ex3": ("2.441e9", "1.69e9")},          # 0.9 * 1.69e9 + 4.6 * 0.20e9 pJ
    "11_full_scale": {"ex1": ("468", "469"),                  # 60000 // 128 full batches (the partial one dropped)
                      "ex2": ("64", "256"),                   # the global batch 256 split over 4 processes
                      "ex3": ("one step gives each neuron one chance to fire: rates are 0 or 1 and the readout is "
                              "coarse", "tdBN's statistics were computed for T = 4")},
}
