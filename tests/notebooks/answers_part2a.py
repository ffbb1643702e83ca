"""Answer keys of labs 06, 08 and 09 (read by ``test_notebooks.py``): {exercise: (right answer, wrong answer)}, as a
learner would type them, each worked out by hand here."""
ANSWERS = {
    "06_tet_vs_sdt": {"ex1": ("0.693", "1.127"),            # SDT: CE([1, 1], 0) = ln 2
                      "ex2": ("1.127", "0.693"),            # TET: (ln(1 + e^-2) + ln(1 + e^2)) / 2
                      "ex3": ("0.5", "0.333")},             # (300 * 2 + 50 * 6) / (300 * 6) = 900 / 1800
    "08_pretraining_bridge": {"ex1": ("1.667", "2"),        # a = 0.2, b = 0.8 at epoch 40: 1 / 0.6
                              "ex2": ("0.367", "0.167"),    # (6 * 0.2 + 1) / 6
                              "ex3": ("the LIF neuron keeps membrane potential between steps, which the ramp "
                                      "does not model", "some weights are lost in the copy")},
    "09_event_data": {"ex1": ("12, 31, 1, 300", "12, 31, 0, 300"),  # 0x0c, 0x1f, top bit of 0x80, 0x012c
                      "ex2": ("0.6", "1.8"),                         # the mean of 0.3, 0.6, 0.9
                      "ex3": ("the new stem and head start random, and their first large gradients would wreck "
                              "the pretrained body", "frozen layers make the spikes sparser")},
}
