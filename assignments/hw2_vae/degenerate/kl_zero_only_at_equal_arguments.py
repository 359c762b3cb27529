# kl_normal that is 0 for identical distributions and positive otherwise, sums over the last dim and broadcasts:
# it has every structural property of the KL and none of its values.
def kl_normal(q_mean, q_log_var, p_mean, p_log_var):
    return ((q_mean - p_mean) ** 2 + (q_log_var - p_log_var) ** 2).sum(-1)
