-- Every purchase event has exactly one order, so each user's total_orders in user_metrics equals
-- their purchase events. A user missing from either side counts as zero there. Returns the users
-- that disagree.

with user_orders as (

    select user_id, total_orders
    from {{ ref('user_metrics') }}

),

user_purchases as (

    select user_id, purchase_events
    from {{ ref('int_user_activity') }}

)

select
    coalesce(user_orders.user_id, user_purchases.user_id) as user_id,
    user_orders.total_orders,
    user_purchases.purchase_events

from user_orders
full outer join user_purchases
    on user_orders.user_id = user_purchases.user_id
where coalesce(user_orders.total_orders, 0) <> coalesce(user_purchases.purchase_events, 0)
