-- Quantile curves of input and output lengths at the probabilities in $probs (a list of
-- doubles in [0, 1]), for plotting length distributions; quantile_cont interpolation.
WITH q AS (
    SELECT quantile_cont(input_len, $probs) AS input_q,
           quantile_cont(output_len, $probs) AS output_q
    FROM requests
)
SELECT unnest($probs) AS prob, unnest(input_q) AS input_len, unnest(output_q) AS output_len
FROM q
