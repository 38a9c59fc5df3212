select c.customer_id, c.name, sum(p.amount) as revenue
from {{ ref('stg_customers') }} c left join {{ ref('stg_payments') }} p using (customer_id)
group by 1, 2
