select
    order_id,
    customer_id,
    status,
    status = 'returned' as is_returned,
    ordered_at,
    cast(ordered_at as date) as order_date
from {{ source('shop', 'orders') }}
