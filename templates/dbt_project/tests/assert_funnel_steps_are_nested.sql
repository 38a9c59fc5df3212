-- Each funnel step counts a subset of the previous step's sessions; a day where a later step has
-- more sessions than an earlier one means int_sessions stopped enforcing the order of the steps.

select *
from {{ ref('funnel') }}
where page_view_sessions > sessions
    or add_to_cart_sessions > page_view_sessions
    or checkout_sessions > add_to_cart_sessions
    or purchase_sessions > checkout_sessions
